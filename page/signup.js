/*
 * signup.js - the signup flow of mod_hydra_signup, for the hosted page
 * (<location>/page/{tenant}) and for the widget (<location>/widget.js,
 * the same file) on a provider's own page:
 *
 *   <script src="https://api.example.net/v1/public/signup/widget.js"
 *           data-tenant="demo" defer></script>
 *
 * Attributes (of the script tag, or of a [data-hydra-signup] element):
 *   data-tenant   the tenant slug (required)
 *   data-api      the API base (default: where widget.js came from)
 *   data-portal   after a verify, POST access_token and refresh_token to
 *                 this URL (an auto-submitted form; never in a URL)
 *   data-resend   least seconds between two codes (default 60)
 *   data-plan     the plan chosen at first (default: ?plan= or the first)
 *   data-target   id of the element to mount into (default: right after
 *                 the script tag)
 *   data-css      "none": do not add the stylesheet link
 *
 * Plain JavaScript, no framework, no inline style or script (works under a
 * strict Content-Security-Policy), no cookies (fetch credentials "omit").
 */
(function () {
  'use strict';

  var FIELDS = ['plan', 'company_name', 'email', 'code'];
  var LABELS = {
    plan: 'Plan',
    company_name: 'Company name',
    email: 'Email address',
    code: 'Verification code'
  };
  var count = 0;
  var current = document.currentScript;

  /* ---- small DOM helpers ---------------------------------------------- */

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    var k;
    for (k in attrs || {}) {
      if (!Object.prototype.hasOwnProperty.call(attrs, k) ||
          attrs[k] === null || attrs[k] === undefined || attrs[k] === false) {
        continue;
      }
      if (k === 'text') {
        e.textContent = attrs[k];
      } else if (k === 'className') {
        e.className = attrs[k];
      } else {
        e.setAttribute(k, attrs[k] === true ? '' : String(attrs[k]));
      }
    }
    (kids || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
      }
    });
    return e;
  }

  function show(node, on) {
    if (on) {
      node.removeAttribute('hidden');
    } else {
      node.setAttribute('hidden', '');
    }
  }

  /* "in 5 seconds", "in about 5 minutes" */
  function inWords(secs) {
    var m, h;
    if (!(secs > 0)) {
      return 'in a moment';
    }
    if (secs < 60) {
      return 'in ' + secs + (secs === 1 ? ' second' : ' seconds');
    }
    m = Math.ceil(secs / 60);
    if (m < 60) {
      return m === 1 ? 'in about a minute' : 'in about ' + m + ' minutes';
    }
    h = Math.ceil(m / 60);
    return h === 1 ? 'in about an hour' : 'in about ' + h + ' hours';
  }

  /* ---- the API ---------------------------------------------------------- */

  /* Resolves {status, data, retry}; rejects only when there was no answer
   * (network down, or the API does not allow this page's origin). */
  function call(url, body) {
    var init = { method: body ? 'POST' : 'GET', credentials: 'omit',
                 mode: 'cors', headers: {} };
    if (body) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
      init.cache = 'no-store';
    }
    return fetch(url, init).then(function (res) {
      var retry = parseInt(res.headers.get('Retry-After') || '', 10);
      return res.text().then(function (t) {
        var data = null;
        try {
          data = t ? JSON.parse(t) : null;
        } catch (e) {
          data = null;
        }
        return { status: res.status, data: data,
                 retry: retry >= 0 ? retry : null };
      });
    });
  }

  function detailText(data) {
    return data && typeof data.detail === 'string' ? data.detail : '';
  }

  /* ---- one mounted flow ------------------------------------------------- */

  function Flow(root, opts) {
    this.root = root;
    this.opts = opts;
    this.id = 'hs' + (++count) + '-';
    this.api = opts.api.replace(/\/+$/, '');
    this.resendAt = 0;
    this.timer = null;
    this.busy = false;
    this.build();
    this.loadPlans();
  }

  Flow.prototype.fieldId = function (name) {
    return this.id + name;
  };

  Flow.prototype.build = function () {
    var self = this;
    var id = this.id;

    this.status = el('p', { className: 'hs-status', role: 'status',
                            'aria-live': 'polite' });
    this.alert = el('div', { className: 'hs-alert', role: 'alert',
                             'aria-live': 'assertive', tabindex: '-1',
                             id: id + 'alert' });
    this.retryButton = el('button', { type: 'button', className: 'hs-button',
                                      text: 'Try again', hidden: true });
    this.retryButton.addEventListener('click', function () {
      self.loadPlans();
    });

    /* step 1: plan, company, email */
    this.planList = el('div', { className: 'hs-plan-list' });
    this.planSet = el('fieldset', {
      className: 'hs-plans', 'aria-describedby': this.fieldId('plan') + '-error'
    }, [
      el('legend', { text: 'Choose a plan' }),
      this.planList,
      el('p', { className: 'hs-field-error',
                id: this.fieldId('plan') + '-error' })
    ]);
    /* for screen readers and focus; the plans and labels speak for it */
    this.signupHeading = el('h2', { className: 'hs-step hs-sr-only',
                                    tabindex: '-1',
                                    text: 'Choose a plan and enter your ' +
                                          'details' });
    this.signupButton = el('button', { type: 'submit', className: 'hs-button',
                                       text: 'Create account' });
    this.signupForm = el('form', { className: 'hs-form', novalidate: true,
                                   hidden: true }, [
      this.signupHeading,
      this.planSet,
      this.field('company_name', { type: 'text', autocomplete: 'organization',
                                   maxlength: '200' }),
      this.field('email', { type: 'email', autocomplete: 'email',
                            inputmode: 'email', autocapitalize: 'off',
                            spellcheck: 'false' }),
      el('div', { className: 'hs-actions' }, [this.signupButton])
    ]);
    this.signupForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      self.signup(false);
    });

    /* step 2: the code */
    this.codeHeading = el('h2', { className: 'hs-step', tabindex: '-1',
                                  text: 'Check your email' });
    this.codeIntro = el('p', { className: 'hs-lead' });
    this.verifyButton = el('button', { type: 'submit', className: 'hs-button',
                                       text: 'Verify' });
    this.resendButton = el('button', { type: 'button', className: 'hs-link',
                                       text: 'Send a new code' });
    this.resendWait = el('span', { className: 'hs-wait' });
    this.changeButton = el('button', { type: 'button', className: 'hs-link',
                                       text: 'Use a different email address' });
    this.codeForm = el('form', { className: 'hs-form', novalidate: true,
                                 hidden: true }, [
      this.codeHeading,
      this.codeIntro,
      this.field('code', { type: 'text', inputmode: 'numeric',
                           autocomplete: 'one-time-code', maxlength: '6',
                           className: 'hs-input hs-code' }),
      el('div', { className: 'hs-actions' }, [this.verifyButton]),
      el('p', { className: 'hs-resend' }, [
        this.resendButton, ' ', this.resendWait
      ]),
      el('p', { className: 'hs-resend' }, [this.changeButton])
    ]);
    this.codeForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      self.verify();
    });
    this.resendButton.addEventListener('click', function () {
      if (self.resendButton.getAttribute('aria-disabled') !== 'true') {
        self.signup(true);
      }
    });
    this.changeButton.addEventListener('click', function () {
      self.stopTimer();
      self.clearErrors();
      self.step('signup');
      self.input('email').focus();
    });

    /* step 3: done */
    this.doneHeading = el('h2', { className: 'hs-step', tabindex: '-1',
                                  text: 'Your account is ready' });
    this.doneBody = el('div');
    this.done = el('section', { className: 'hs-done', hidden: true },
                   [this.doneHeading, this.doneBody]);

    this.root.appendChild(el('div', { className: 'hs-flow' }, [
      this.status, this.alert, this.retryButton, this.signupForm,
      this.codeForm, this.done
    ]));
  };

  /* A labelled input with its error line (named as the API's member). */
  Flow.prototype.field = function (name, attrs) {
    var id = this.fieldId(name);
    var a = { id: id, name: name, className: 'hs-input',
              'aria-describedby': id + '-error' };
    var k;
    for (k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) {
        a[k] = attrs[k];
      }
    }
    return el('div', { className: 'hs-field' }, [
      el('label', { 'for': id, text: LABELS[name] }),
      el('input', a),
      el('p', { className: 'hs-field-error', id: id + '-error' })
    ]);
  };

  Flow.prototype.input = function (name) {
    return document.getElementById(this.fieldId(name));
  };

  Flow.prototype.step = function (which) {
    show(this.signupForm, which === 'signup');
    show(this.codeForm, which === 'code');
    show(this.done, which === 'done');
  };

  /* ---- messages ----------------------------------------------------------- */

  Flow.prototype.clearErrors = function () {
    var self = this;
    this.alert.textContent = '';
    this.status.textContent = '';
    FIELDS.forEach(function (f) {
      var e = document.getElementById(self.fieldId(f) + '-error');
      var i = f === 'plan' ? self.planSet : self.input(f);
      if (e) {
        e.textContent = '';
      }
      if (i) {
        i.removeAttribute('aria-invalid');
      }
    });
  };

  /* A message for the whole step: announced, and focus goes to it. */
  Flow.prototype.fail = function (text) {
    this.alert.textContent = text;
    this.alert.focus();
  };

  Flow.prototype.fieldError = function (name, text) {
    var e = document.getElementById(this.fieldId(name) + '-error');
    var i = name === 'plan' ? this.planSet : this.input(name);
    if (!e || !i || (i.closest && i.closest('[hidden]'))) {
      return false;
    }
    e.textContent = e.textContent ? e.textContent + ' ' + text : text;
    i.setAttribute('aria-invalid', 'true');
    return true;
  };

  /* 422: every message next to its field (loc tells which) */
  Flow.prototype.validation = function (data) {
    var self = this;
    var first = null;
    var other = [];
    var list = data && Array.isArray(data.detail) ? data.detail : null;
    if (!list) {
      this.fail(detailText(data) || 'Please check what you entered.');
      return;
    }
    list.forEach(function (e) {
      var loc = Array.isArray(e.loc) ? e.loc : [];
      var name = loc[0] === 'body' ? loc[1] : loc[loc.length - 1];
      var msg = typeof e.msg === 'string' ? e.msg : 'Invalid value';
      if (FIELDS.indexOf(name) >= 0 && self.fieldError(name, msg)) {
        if (!first) {
          first = name;
        }
      } else {
        other.push(msg);
      }
    });
    FIELDS.forEach(function (f) {
      /* focus the first invalid field in the order of the form */
      var i = f === 'plan' ? self.planSet : self.input(f);
      if (first && i && i.getAttribute('aria-invalid') === 'true' &&
          FIELDS.indexOf(f) < FIELDS.indexOf(first)) {
        first = f;
      }
    });
    if (other.length) {
      this.fail(other.join(' '));
    } else if (first) {
      this.status.textContent = 'Please correct the highlighted ' +
        (list.length > 1 ? 'fields.' : 'field.');
      if (first === 'plan') {
        var r = this.planList.querySelector('input:checked') ||
                this.planList.querySelector('input');
        if (r) {
          r.focus();
        }
      } else {
        this.input(first).focus();
      }
    }
  };

  /* Everything but 2xx and 422, in plain words. */
  Flow.prototype.answer = function (res, during) {
    var d = detailText(res.data);
    var wait = inWords(res.retry);
    if (res.status === 404) {
      this.fail('Signup for this provider is not available here.');
    } else if (res.status === 409) {
      this.fail('An account with this email address already exists. ' +
                'Please sign in to your portal, or use another address.');
      if (this.fieldError('email', 'This address already has an account.')) {
        /* the alert has focus; the field is marked */
      }
    } else if (res.status === 429) {
      if (/sent recently/i.test(d)) {
        this.fail('We sent you a code a moment ago. You can ask for another ' +
                  'one ' + wait + '.');
      } else if (during === 'verify') {
        this.fail('Too many wrong codes. For your safety this code no ' +
                  'longer works: please ask for a new code ' + wait + '.');
      } else {
        this.fail('Too many attempts. Please wait and try again ' + wait +
                  '.');
      }
    } else if (res.status === 503) {
      if (/capacity/i.test(d)) {
        this.fail('Sorry, all our servers are full right now, so we cannot ' +
                  'create your site. Please try again ' + wait + '.');
      } else {
        this.fail('Signup is temporarily unavailable. Please try again ' +
                  wait + '.');
      }
    } else {
      this.fail('Something went wrong (error ' + res.status + '). Please ' +
                'try again.');
    }
  };

  Flow.prototype.offline = function (typed) {
    this.fail('We could not reach the signup service. Please check your ' +
              'connection and try again' +
              (typed ? '; what you typed is still here.' : '.'));
  };

  Flow.prototype.setBusy = function (on) {
    this.busy = on;
    [this.signupButton, this.verifyButton].forEach(function (b) {
      if (on) {
        b.setAttribute('aria-disabled', 'true');
      } else {
        b.removeAttribute('aria-disabled');
      }
    });
    this.root.setAttribute('aria-busy', on ? 'true' : 'false');
  };

  /* ---- step 1: plans and the signup form ---------------------------------- */

  Flow.prototype.loadPlans = function () {
    var self = this;
    show(this.retryButton, false);
    this.alert.textContent = '';
    this.status.textContent = 'Loading the plans…';
    call(this.api + '/plans/' + encodeURIComponent(this.opts.tenant))
      .then(function (res) {
        self.status.textContent = '';
        if (res.status === 200 && Array.isArray(res.data)) {
          self.renderPlans(res.data);
          self.step('signup');
          return;
        }
        self.answer(res, 'plans');
        show(self.retryButton, res.status !== 404);
      }, function () {
        self.status.textContent = '';
        self.offline(false);
        show(self.retryButton, true);
      });
  };

  Flow.prototype.renderPlans = function (plans) {
    var self = this;
    var want = this.opts.plan;
    var names = plans.map(function (p) { return p.name; });
    this.planList.textContent = '';
    if (!plans.length) {
      show(this.planSet, false);
      return;
    }
    if (names.indexOf(want) < 0) {
      want = names[0];
    }
    plans.forEach(function (p) {
      var id = self.fieldId('plan-' + names.indexOf(p.name));
      var features = (Array.isArray(p.features) ? p.features : [])
        .map(function (f) {
          return el('span', { className: 'hs-feature', text: String(f) });
        });
      self.planList.appendChild(el('div', { className: 'hs-plan' }, [
        el('input', { type: 'radio', name: 'plan', id: id, value: p.name,
                      className: 'hs-plan-input',
                      checked: p.name === want }),
        el('label', { 'for': id, className: 'hs-plan-card' }, [
          el('span', { className: 'hs-plan-head' }, [
            el('span', { className: 'hs-plan-name', text: p.name }),
            el('span', { className: 'hs-plan-price', text: p.price || '' })
          ]),
          p.description ? el('span', { className: 'hs-plan-desc',
                                       text: p.description }) : null,
          features.length ? el('span', { className: 'hs-plan-features' },
                               features) : null,
          el('span', { className: 'hs-plan-chosen', text: 'Selected' })
        ])
      ]));
    });
    show(this.planSet, true);
  };

  Flow.prototype.values = function () {
    var checked = this.planList.querySelector('input:checked');
    var v = {
      company_name: this.input('company_name').value,
      email: this.input('email').value.trim(),
      tenant_slug: this.opts.tenant
    };
    if (checked) {
      v.plan = checked.value;
    }
    return v;
  };

  /* POST the signup; again=true is the resend from the code step. */
  Flow.prototype.signup = function (again) {
    var self = this;
    var body = again && this.sent ? this.sent : this.values();
    if (this.busy) {
      return;
    }
    this.clearErrors();
    this.setBusy(true);
    this.status.textContent = again ? 'Sending a new code…'
                                    : 'Creating your account…';
    call(this.api, body).then(function (res) {
      self.setBusy(false);
      self.status.textContent = '';
      if (res.status === 201 && res.data) {
        self.sent = body;
        self.signed = res.data;
        self.startTimer(self.opts.resend);
        if (again) {
          self.input('code').value = '';
          self.status.textContent = 'We sent a new code to ' + body.email +
            '. The previous code no longer works.';
          self.input('code').focus();
        } else {
          self.showCode(body, res.data);
        }
        return;
      }
      if (res.status === 422) {
        if (again) {
          self.step('signup');
        }
        self.validation(res.data);
        return;
      }
      if (res.status === 429 && res.retry) {
        self.startTimer(res.retry);
      }
      if (res.status === 429 && !again && self.sent &&
          self.sent.email === body.email &&
          /sent recently/i.test(detailText(res.data))) {
        /* the code mailed a moment ago still works: back to it */
        self.showCode(self.sent, self.signed);
      }
      self.answer(res, 'signup');
    }, function () {
      self.setBusy(false);
      self.status.textContent = '';
      self.offline(true);
    });
  };

  /* ---- step 2: the code --------------------------------------------------- */

  Flow.prototype.showCode = function (body, data) {
    this.codeIntro.textContent = '';
    this.codeIntro.appendChild(document.createTextNode(
      'We sent a 6-digit code to '));
    this.codeIntro.appendChild(el('strong', { text: body.email }));
    this.codeIntro.appendChild(document.createTextNode(
      '. Enter it here to activate your account.'));
    this.input('code').value = '';
    this.step('code');
    this.codeHeading.focus();
  };

  Flow.prototype.stopTimer = function () {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  };

  /* The resend link waits out the resend interval (or a Retry-After). */
  Flow.prototype.startTimer = function (secs) {
    var self = this;
    var at = Date.now() + (secs > 0 ? secs : 0) * 1000;
    if (at > this.resendAt) {
      this.resendAt = at;
    }
    this.stopTimer();
    function tick() {
      var left = Math.ceil((self.resendAt - Date.now()) / 1000);
      if (left > 0) {
        self.resendButton.setAttribute('aria-disabled', 'true');
        self.resendWait.textContent = 'You can ask for a new code in ' +
          left + (left === 1 ? ' second.' : ' seconds.');
      } else {
        self.resendButton.removeAttribute('aria-disabled');
        self.resendWait.textContent = 'Did not get it? Check your spam ' +
          'folder, or ask for a new code.';
        self.stopTimer();
      }
    }
    tick();
    if (this.resendAt > Date.now()) {
      this.timer = setInterval(tick, 1000);
    }
  };

  Flow.prototype.verify = function () {
    var self = this;
    var code = this.input('code').value.replace(/\s+/g, '');
    if (this.busy) {
      return;
    }
    this.clearErrors();
    this.setBusy(true);
    this.status.textContent = 'Checking the code…';
    call(this.api + '/verify', {
      code: code, email: this.sent.email, tenant_slug: this.opts.tenant
    }).then(function (res) {
      self.setBusy(false);
      self.status.textContent = '';
      if (res.status === 200 && res.data && res.data.access_token) {
        self.finish(res.data);
      } else if (res.status === 400) {
        self.fieldError('code', 'This code is not right or has expired. ' +
                        'Check the newest email from us, or ask for a new ' +
                        'code.');
        self.input('code').focus();
        self.input('code').select();
      } else if (res.status === 422) {
        self.validation(res.data);
      } else {
        self.answer(res, 'verify');
      }
    }, function () {
      self.setBusy(false);
      self.status.textContent = '';
      self.offline(true);
    });
  };

  /* ---- step 3: done ------------------------------------------------------- */

  Flow.prototype.finish = function (tokens) {
    var site = this.signed && this.signed.site_url;
    var portal = this.opts.portal;
    var form;
    this.stopTimer();
    this.doneBody.textContent = '';
    if (site) {
      this.doneBody.appendChild(el('p', { className: 'hs-lead' }, [
        'Your site will be at ',
        el('a', { href: site, className: 'hs-site', rel: 'noopener',
                  text: site }),
        '.'
      ]));
    }
    if (portal) {
      /* the tokens go to the portal in a POST body, never in a URL */
      form = el('form', { method: 'post', action: portal,
                          className: 'hs-portal' }, [
        el('input', { type: 'hidden', name: 'access_token',
                      value: tokens.access_token }),
        el('input', { type: 'hidden', name: 'refresh_token',
                      value: tokens.refresh_token }),
        el('p', { text: 'Taking you to your portal…' }),
        el('button', { type: 'submit', className: 'hs-button',
                       text: 'Continue to your portal' })
      ]);
      this.doneBody.appendChild(form);
    } else {
      this.doneBody.appendChild(el('p', {
        text: 'You can sign in to your portal with ' + this.sent.email + '.'
      }));
    }
    this.step('done');
    this.doneHeading.focus();
    if (form) {
      form.submit();
    }
  };

  /* ---- mounting ----------------------------------------------------------- */

  function planFromQuery() {
    var m = /[?&]plan=([^&#]*)/.exec(window.location.search);
    try {
      return m ? decodeURIComponent(m[1].replace(/\+/g, ' ')) : '';
    } catch (e) {
      return '';
    }
  }

  function optionsOf(node, apiDefault) {
    var resend = parseInt(node.getAttribute('data-resend') || '', 10);
    return {
      tenant: node.getAttribute('data-tenant') || '',
      api: node.getAttribute('data-api') || apiDefault || '',
      portal: node.getAttribute('data-portal') || '',
      resend: resend > 0 ? resend : 60,
      plan: node.getAttribute('data-plan') || planFromQuery()
    };
  }

  function mount(root, opts) {
    if (root.hasAttribute('data-hydra-mounted')) {
      return;
    }
    root.setAttribute('data-hydra-mounted', '');
    if (!opts.tenant || !opts.api) {
      root.appendChild(el('p', { className: 'hs-alert', role: 'alert',
        text: 'This signup form is not set up (data-tenant is missing).' }));
      return;
    }
    root.flow = new Flow(root, opts);
  }

  /* widget.js: the script tag says where and for whom */
  function mountWidget(script) {
    var base = script.src.replace(/\/widget\.js([?#].*)?$/, '');
    var opts = optionsOf(script, base);
    var targetId = script.getAttribute('data-target');
    var root = targetId ? document.getElementById(targetId) : null;
    var css = base + '/page/assets/signup.css';
    if (!root) {
      root = el('div');
      script.parentNode.insertBefore(root, script.nextSibling);
    }
    root.classList.add('hs-signup', 'hs-widget');
    if (script.getAttribute('data-css') !== 'none' &&
        !document.querySelector('link[data-hydra-signup-css]')) {
      document.head.appendChild(el('link', { rel: 'stylesheet', href: css,
                                             'data-hydra-signup-css': '' }));
    }
    mount(root, opts);
  }

  function boot() {
    var i, nodes;
    if (current && current.hasAttribute('data-tenant')) {
      mountWidget(current);
    }
    nodes = document.querySelectorAll('[data-hydra-signup]');
    for (i = 0; i < nodes.length; i++) {
      mount(nodes[i], optionsOf(nodes[i], ''));
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', boot);
  } else {
    boot();
  }
})();
