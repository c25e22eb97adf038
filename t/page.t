# The hosted signup page and the widget (issue 14; CONTRACT section 1,
# "Beyond the seed"): HTTP checks of the page and its assets here, then the
# whole flow in a real browser - headless Chromium driven by Selenium
# (t/browser/page_flow.py) - against this httpd, module and PostgreSQL, the
# codes delivered by the real sender to a real SMTP sink. The browser
# script's TAP lines become this file's checks; its "# info" lines name the
# customers it made, checked here in the database.
#
# Screenshots of every step go to $HYDRA_SCREENSHOTS (default
# t/logs/screenshots).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use File::Temp qw(tempdir);
use HTTP::Request ();
use LWP::UserAgent ();
use lib 't/lib', 'tests/mailer/lib';
use HydraTest qw(dbh reset_db add_tenant);
use MailerTest qw(start_sink stop_proc start_mailer kill_all);

my @results;    # [ok, name, note]: emitted once the plan is known
sub rec {
    my ($ok, $name, $note) = @_;
    push @results, [$ok ? 1 : 0, $name, $note];
}

reset_db();
add_tenant(slug => 'pageco', domain => 'pageco.example.net',
    plans => [['starter', '$5/mo', ['1 site', '10 GB SSD']],
              ['pro', '$15/mo', ['10 sites', 'Daily backups']],
              ['business', '$40/mo', ['Unlimited sites', 'Priority support']]]);
add_tenant(slug => 'pagefull', nodes => [[1, 1]]);
add_tenant(slug => 'page-off', enabled => 0);
my $odd = q{q"<x&'};
add_tenant(slug => $odd, domain => 'odd.example.net');

my $LOC = '/v1/public/signup';
my $PEER = $ENV{HYDRA_PAGE_PEER_PORT} // 0;
my $PEER_ORIGIN = "http://127.0.0.1:$PEER";
sub base_of {
    Apache::TestRequest::module($_[0]);
    my ($port) = Apache::TestRequest::hostport() =~ /:(\d+)$/;
    Apache::TestRequest::module('default');
    return "http://127.0.0.1:$port";
}
my $MAIN = base_of('default');
my $PAGE = base_of('vhost_page');
my $PORTAL = base_of('vhost_page_portal');
my $ua = LWP::UserAgent->new(timeout => 30);
sub get { my ($url, @h) = @_; return $ua->get($url, @h) }
sub hdr { my ($res, $h) = @_; return scalar($res->header($h)) // '' }

# ---- the switch -------------------------------------------------------------
rec(get("$MAIN$LOC/page/demo")->code == 404, 'HydraSignupPage Off: page 404');
rec(get("$MAIN$LOC/widget.js")->code == 404, 'HydraSignupPage Off: widget.js 404');

# ---- the page ---------------------------------------------------------------
my $csp = "default-src 'none'; script-src 'self'; style-src 'self'; "
    . "connect-src 'self'; img-src 'self'; form-action %s; base-uri 'none'; "
    . "frame-ancestors 'none'";
my $res = get("$PAGE$LOC/page/pageco");
my $body = $res->decoded_content // '';
rec($res->code == 200, 'page: 200', $res->code);
rec(hdr($res, 'Content-Type') eq 'text/html; charset=utf-8', 'page: HTML',
    hdr($res, 'Content-Type'));
rec(hdr($res, 'Content-Security-Policy') eq sprintf($csp, "'self'"),
    'page: the strict CSP', hdr($res, 'Content-Security-Policy'));
rec($body =~ /data-tenant="pageco"/ && $body =~ /data-api="\Q$LOC\E"/
    && $body =~ /data-portal=""/ && $body =~ /data-resend="3"/,
    'page: tenant, API base, no portal, resend interval filled in');
my @scripts = $body =~ /<script\b([^>]*)>(.*?)<\/script>/gis;
my $inline = 0;
while (my ($attrs, $text) = splice @scripts, 0, 2) {
    $inline++ if $attrs !~ /\bsrc="[^"]+"/ || $text =~ /\S/;
}
rec($inline == 0 && $body =~ /<script\b/ && $body !~ /<style\b/i
    && $body !~ /\sstyle=/i && $body !~ /\son[a-z]+=/i,
    'page: no inline script, style or handler');
rec($body !~ /(?:src|href)="(?:https?:)?\/\//i,
    'page: no third-party asset (no absolute src or href)');
rec(!$res->header('Set-Cookie'), 'page: no cookie');
my $etag = hdr($res, 'ETag');
rec($etag =~ /^"[0-9a-f]{32}"$/ && hdr($res, 'Cache-Control') =~ /max-age=\d+/,
    'page: ETag and Cache-Control', "$etag " . hdr($res, 'Cache-Control'));
rec(get("$PAGE$LOC/page/pageco", 'If-None-Match' => $etag)->code == 304,
    'page: 304 on If-None-Match');
$res = get("$PAGE$LOC/page/nosuch");
rec($res->code == 404 && hdr($res, 'Content-Type') =~ m{^text/html}
    && hdr($res, 'Content-Security-Policy') ne ''
    && $res->decoded_content =~ /no signup page/i,
    'unknown tenant: the 404 page', $res->code);
rec(get("$PAGE$LOC/page/page-off")->code == 404, 'disabled tenant: 404');
$res = get("$PAGE$LOC/page/q%22%3Cx%26'");
$body = $res->decoded_content // '';
rec($res->code == 200 && $body =~ /data-tenant="q&quot;&lt;x&amp;'"/
    && $body !~ /q"</, 'page: the slug is HTML-escaped', $res->code);
$res = HTTP::Request->new(HEAD => "$PAGE$LOC/page/pageco");
$res = $ua->request($res);
rec($res->code == 200 && $res->content eq '', 'HEAD page: 200, no body');
$res = $ua->post("$PAGE$LOC/page/pageco", Content => '');
rec($res->code == 405 && hdr($res, 'Allow') eq 'GET, HEAD, OPTIONS',
    'POST page: 405 with Allow', $res->code);

# ---- widget.js and the assets -------------------------------------------
$res = get("$PAGE$LOC/widget.js");
my $widget = $res->content;
rec($res->code == 200
    && hdr($res, 'Content-Type') eq 'text/javascript; charset=utf-8',
    'widget.js: JavaScript', hdr($res, 'Content-Type'));
rec(hdr($res, 'Access-Control-Allow-Origin') eq '*'
    && hdr($res, 'Cache-Control') =~ /^public, max-age=\d+$/,
    'widget.js: any origin may load it, cacheable',
    hdr($res, 'Cache-Control'));
$etag = hdr($res, 'ETag');
rec($etag ne '' && get("$PAGE$LOC/widget.js", 'If-None-Match' => $etag)->code == 304,
    'widget.js: 304 on If-None-Match');
$res = get("$PAGE$LOC/page/assets/signup.js");
rec($res->code == 200 && $res->content eq $widget,
    'page/assets/signup.js: the same flow as widget.js');
$res = get("$PAGE$LOC/page/assets/signup.css");
rec($res->code == 200 && hdr($res, 'Content-Type') =~ m{^text/css}
    && $res->content =~ /\.hs-signup/, 'page/assets/signup.css');
rec(get("$PAGE$LOC/page/assets/other.js")->code == 404, 'unknown asset: 404');

# ---- CORS for the widget: the wait of a 429/503 is readable --------------
$res = $ua->post("$PAGE$LOC", 'Content-Type' => 'application/json',
                 Origin => $PEER_ORIGIN, Content => '{}');
rec($res->code == 422 && hdr($res, 'Access-Control-Allow-Origin') eq $PEER_ORIGIN
    && hdr($res, 'Access-Control-Expose-Headers') =~ /\bRetry-After\b/,
    'CORS: the allowed origin, Retry-After exposed',
    hdr($res, 'Access-Control-Expose-Headers'));

# ---- the portal ---------------------------------------------------------
$res = get("$PORTAL$LOC/page/pageco");
rec(hdr($res, 'Content-Security-Policy') eq sprintf($csp, $PEER_ORIGIN),
    'portal page: CSP form-action is the portal origin',
    hdr($res, 'Content-Security-Policy'));
rec(($res->decoded_content // '') =~
    /data-portal="\Q$PEER_ORIGIN\E\/portal\/session"/,
    'portal page: the portal URL filled in');
$res = get("$PORTAL$LOC/page/demo");
rec($res->code == 404 && hdr($res, 'Content-Type') =~ m{^text/html},
    'a tenant this vhost does not serve: the 404 page', $res->code);

# ---- configuration time: httpd -t ---------------------------------------
{
    my $st = $ENV{HYDRA_STATE};
    my $dir = tempdir(CLEANUP => 1);
    my $good = "HydraSignupTenants demo\nHydraSignupJWTKeyFile $st/jwt-hs256.key\n"
        . "HydraSignupCodeSecretFile $st/code.secret\n"
        . "HydraSignupSpoolDir $st/spool\n"
        . "HydraSignupMailFrom \"Demo <noreply\@example.net>\"\n";
    my ($rc, $out) = HydraTest::httpd_t(dir => $dir, inside => $good
        . "HydraSignupPage On\nHydraSignupPortalURL https://portal.example.net:8443/session?x=1\n");
    rec($rc == 0, 'httpd -t: HydraSignupPage On and a portal URL', $out);
    for my $bad ('ftp://portal.example.net/', '/relative/path',
                 'http://user:pw@portal.example.net/',
                 'http://portal.example.net/#top', 'https://',
                 'http://portal.example.net/a"b', 'https://portal example/') {
        ($rc, $out) = HydraTest::httpd_t(dir => $dir,
            inside => $good . "HydraSignupPortalURL '$bad'\n");
        rec($rc != 0 && $out =~ /HydraSignupPortalURL: '\Q$bad\E'/,
            "httpd -t refuses HydraSignupPortalURL $bad", $out);
    }
    ($rc, $out) = HydraTest::httpd_t(dir => $dir,
        inside => $good . "HydraSignupPage maybe\n");
    rec($rc != 0 && $out =~ /HydraSignupPage/, 'httpd -t refuses HydraSignupPage maybe', $out);
}

# ---- the browser --------------------------------------------------------
my $shots = $ENV{HYDRA_SCREENSHOTS} || 't/logs/screenshots';
my $tmp = tempdir(CLEANUP => 1);
my $sink = start_sink($tmp);
my $mailer = start_mailer(Apache::Test::vars('t_logs') . '/page-mailer.log',
    '--spool', "$ENV{HYDRA_STATE}/spool", '--smtp',
    "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off',
    '--from', 'noreply@sites.example.net');
my @py;
{
    local $ENV{HS_PAGE_BASE} = "$PAGE$LOC";
    local $ENV{HS_PORTAL_BASE} = "$PORTAL$LOC";
    local $ENV{HS_PEER_PORT} = $PEER;
    local $ENV{HS_MAILDIR} = $sink->{maildir};
    local $ENV{HS_JWT_KEY} = "$ENV{HYDRA_STATE}/jwt-hs256.key";
    local $ENV{HYDRA_SCREENSHOTS} = $shots;
    # bounded: a hung browser is a failure, not a hung suite
    open my $fh, '-|', 'timeout', '-k', '10', '900', '/usr/bin/python3',
        't/browser/page_flow.py' or die "cannot run page_flow.py: $!";
    @py = <$fh>;
    close $fh;
}
my $py_rc = $? >> 8;
stop_proc($mailer);
stop_proc($sink->{pid});
kill_all();

my ($planned) = map { /^1\.\.(\d+)/ ? $1 : () } @py;
$planned //= 0;
my (@pyres, %info, @shots);
for my $l (@py) {
    print $l =~ /^#/ ? $l : '';
    if ($l =~ /^(not )?ok \d+ - (.*)$/) {
        push @pyres, [$1 ? 0 : 1, "browser: $2"];
    }
    elsif ($l =~ /^# info shot=(.*)$/) {
        push @shots, $1;
    }
    elsif ($l =~ /^# info (\w+)=(.*)$/) {
        $info{$1} = $2;
    }
}
rec($planned > 0, 'the browser script ran and made its plan');
rec($py_rc == 0, "the browser script ended well (exit $py_rc)");

# ---- what the browser did, in the database ------------------------------
sub customer_of {
    my ($email) = @_;
    return dbh()->selectrow_hashref(
        "SELECT c.id::text AS id, c.status, c.plan, c.site_url FROM customers c
         JOIN tenants t ON t.id = c.tenant_id
         WHERE t.slug = 'pageco' AND lower(c.email) = lower(?)", undef,
        $email // '') // {};
}
my $c = customer_of($info{portal_email});
rec(($c->{status} // '') eq 'active' && ($c->{plan} // '') eq 'pro'
    && $c->{id} eq ($info{portal_sub} // ''),
    'hosted page + portal: active on the chosen plan, tokens for it',
    join ' ', %$c);
$c = customer_of($info{narrow_email});
rec(($c->{status} // '') eq 'active' && ($c->{plan} // '') eq 'starter',
    'narrow window: active, on the first plan', join ' ', %$c);
$c = customer_of($info{widget_email});
rec(($c->{status} // '') eq 'active' && ($c->{plan} // '') eq 'business',
    'widget: active, on the plan picked', join ' ', %$c);
$c = customer_of($info{keyboard_email});
rec(($c->{status} // '') eq 'active' && ($c->{plan} // '') eq 'business',
    'keyboard only: active, on the plan picked with the arrows',
    join ' ', %$c);
# the screenshots the script says it saved are there, PNG files
sub is_png {
    my ($path) = @_;
    open my $f, '<:raw', $path or return 0;
    my $n = read $f, my $magic, 8;
    close $f;
    return ($n // 0) == 8 && $magic eq "\x89PNG\r\n\x1a\n";
}
my @png = grep { is_png($_) } @shots;
rec(@shots >= 15 && @png == @shots,
    "screenshots of every step in $shots (" . scalar(@png) . ')');

# ---- the plan: ours plus the browser's (missing ones fail) --------------
my @extra = @pyres > $planned ? splice(@pyres, $planned) : ();
my $extra_failed = grep { !$_->[0] } @extra;
plan tests => @results + $planned, have_lwp;
for my $r (@results) {
    print "# $r->[2]\n" if !$r->[0] && defined $r->[2];
    ok t_cmp($r->[0], 1, $r->[1]);
}
for my $i (0 .. $planned - 1) {
    my $r = $pyres[$i] // [0, 'browser: check ' . ($i + 1) . ' did not run'];
    # more lines than planned (a scenario crashed): a failure among them
    # fails the last check
    $r = [0, "$r->[1] (and a check after it failed)"]
        if $i == $planned - 1 && $extra_failed;
    ok t_cmp($r->[0], 1, $r->[1]);
}
