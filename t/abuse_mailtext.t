# Mail that cannot be used against strangers (issue 12, CONTRACT.md
# section 4): the company name a visitor typed never in the Subject and at
# most once in the body, with every link-like part defused ("://" ->
# "[://]", "@" -> "[@]", "www." -> "www[.]"); the per-address budget
# counts the mailbox (case and +tag ignored); HydraSignupTenantMailsPerHour
# caps a tenant's codes per hour (429 beyond).
# vhosts: vhost_signup_small (MailsPerHour 3), vhost_guess (concealed),
# vhost_mailcap (TenantMailsPerHour 3) - t/conf/*.conf.in.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json check
                 spool_files read_mail signup_code);

plan tests => 21, have_lwp;

my $db = dbh();
reset_db();
add_tenant(slug => 'mailtext', nodes => [[1000, 0]]);
add_tenant(slug => 'mailtag', nodes => [[1000, 0]]);
add_tenant(slug => 'mailcap', nodes => [[1000, 0]]);
add_tenant(slug => 'mailcap2', nodes => [[1000, 0]]);
my $SIGNUP = '/v1/public/signup';
my $EVIL = 'Visit https://evil.example/login or www.evil.example, '
    . 'write to boss@evil.example';

# the message for $to among new/ files not in %$seen
sub mail_to {
    my ($to, $seen) = @_;
    for my $f (spool_files('new')) {
        next if $seen->{$f};
        my $m = read_mail($f);
        return $m if ($m->{headers}{to} // '') =~ /\Q$to\E/i;
    }
    return undef;
}
sub seen_now { return { map { $_ => 1 } spool_files('new') } }
sub signup {
    my ($email, $tenant, $company) = @_;
    return post_json($SIGNUP, { company_name => $company // 'Tag Co',
                                email => $email, tenant_slug => $tenant });
}
sub check_text {
    my ($m, $subject, $what) = @_;
    ok t_cmp($m->{headers}{subject}, $subject,
             "$what: the Subject is ours alone");
    my $body = $m->{body};
    ok t_cmp(scalar(() = $body =~ /Visit https/g), 1,
             "$what: the company name once in the body");
    check($body !~ m{https://evil} && $body !~ /www\.evil/
              && $body !~ /boss\@/ && $body !~ /evil\.example/,
          "$what: nothing a mail client would make a link of");
    check(index($body, 'https[://]evil[.]example/login or www[.]evil[.]example'
                       . ', write to boss[@]evil[.]example') >= 0,
          "$what: the name readable, defused");
}

# ---- the verification mail -------------------------------------------------
Apache::TestRequest::module('vhost_signup');
{
    my $seen = seen_now();
    my $res = signup('victim@example.org', 'mailtext', $EVIL);
    ok t_cmp($res->code, 201, 'a company name with a URL, www. and an address');
    my $m = mail_to('victim@example.org', $seen);
    check($m, 'the verification mail is queued');
    check_text($m // { headers => {}, body => '' }, 'Your verification code',
               'verification mail');
}

# ---- the account-exists mail (conceal mode) ---------------------------------
Apache::TestRequest::module('vhost_guess');
{
    my $email = 'owner-' . time . "-$$\@example.org";
    my ($id) = signup_code(email => $email, tenant => 'mailtext',
                           company => 'Owner Co');
    $db->do("UPDATE customers SET status = 'active', verified_at = now()
             WHERE id = ?", undef, $id);
    my $seen = seen_now();
    my $res = signup($email, 'mailtext', $EVIL);
    ok t_cmp($res->code, 201, 'concealed active address: 201');
    my $m = mail_to($email, $seen);
    check($m, 'the account-exists mail is queued');
    check_text($m // { headers => {}, body => '' }, 'Your account',
               'account-exists mail');
}

# ---- the budget counts the mailbox -------------------------------------------
Apache::TestRequest::module('vhost_signup_small');    # MailsPerHour 3
{
    my @st = map { signup($_, 'mailtag')->code }
        ('a+1@x.example', 'A+2@X.EXAMPLE', 'a@x.example', 'a+4@x.example');
    ok t_cmp(join(',', @st), '201,201,201,429',
             'a+1@x, A+2@X, a@x, a+4@x: one mailbox, one budget of 3');
    ok t_cmp(signup('b+1@x.example', 'mailtag')->code, 201,
             'another mailbox has its own budget');
    my ($rows) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_mail_log WHERE email_lower =
         'a\@x.example'");
    ok t_cmp($rows, 3, 'the mail log counts the mailbox');
}

# ---- the tenant's codes per hour -------------------------------------------
Apache::TestRequest::module('vhost_mailcap');    # TenantMailsPerHour 3
{
    my @st = map { signup("cap$_\@example.net", 'mailcap')->code } 1 .. 3;
    ok t_cmp(join(',', @st), '201,201,201', 'three codes for the tenant');
    my $seen = seen_now();
    my $res = signup('cap4@example.net', 'mailcap');
    ok t_cmp($res->code, 429, 'the 4th code of the hour: 429');
    my $ra = $res->header('Retry-After') // '';
    check($ra =~ /^\d+$/ && $ra >= 1 && $ra <= 3600,
          "with Retry-After ($ra)");
    ok t_cmp(scalar(grep { !$seen->{$_} } spool_files('new')), 0,
             'and no mail');
    my ($n) = $db->selectrow_array(
        "SELECT count(*) FROM customers c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.slug = 'mailcap' AND c.email = 'cap4\@example.net'");
    ok t_cmp($n, 0, 'and no signup');
    ok t_cmp(signup('cap1@example.net', 'mailcap2')->code, 201,
             'another tenant is not held back');
}
