# Conceal mode indistinguishable (issue 12, CONTRACT.md section 1, signup
# 409 row): with HydraSignupConcealExisting On an active address is answered
# as a pending one would be, side by side, status for status and field for
# field:
#  1. a re-signup under another company name keeps the first site_url;
#  2. the concealed answer's site label is taken: the next signup of that
#     company name gets "-2", as after a real pending signup;
#  4. a tenant without a free slot: 503 for the active address as for a new
#     one.
# (3, verify, is t/abuse_guess.t.) The platform's tables stay untouched.
# vhost_guess: t/conf/hydra_issue12.conf.in.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json check
                 signup_code);

plan tests => 16, have_lwp;

my $db = dbh();
reset_db();
my $tid = add_tenant(slug => 'hide', domain => 'hide.test',
                     nodes => [[1000, 0]]);
Apache::TestRequest::module('vhost_guess');
my $run = sprintf '%x%x', time, $$;
my $SIGNUP = '/v1/public/signup';

sub signup {
    my ($email, $company, $tenant) = @_;
    return post_json($SIGNUP, { company_name => $company, email => $email,
                                tenant_slug => $tenant // 'hide' });
}
sub backdate {
    $db->do("UPDATE hydra_signup_codes SET sent_at = sent_at
             - interval '1 hour'");
    $db->do("UPDATE hydra_signup_mail_log SET sent_at = sent_at
             - interval '1 hour'");
    $db->do("UPDATE hydra_signup_decoys SET sent_at = sent_at
             - interval '1 hour'");
}
# an active customer of tenant, made by a real signup, then activated
sub active {
    my ($email, $tenant) = @_;
    my ($id) = signup_code(email => $email, tenant => $tenant // 'hide',
                           company => "Owner $email");
    die "no signup for $email" unless $id;
    $db->do("UPDATE customers SET status = 'active', verified_at = now()
             WHERE id = ?", undef, $id);
    return $id;
}
# the platform's tables, for "untouched"
sub platform {
    return join "\n", map { join '|', map { $_ // '' } @$_ } @{
        $db->selectall_arrayref(
            "SELECT 'c', id, company_name, email, site_url, status, node_id
             FROM customers UNION ALL
             SELECT 'n', id, used::text, capacity::text, NULL, NULL, NULL
             FROM nodes ORDER BY 1, 2") };
}
# what a client sees of an answer, with site_url and customer_id given as
# "same as <first answer>" or the value relative to $label
sub view {
    my ($res, $first, $label) = @_;
    my $d = get_json($res) // {};
    my $site = $d->{site_url} // '-';
    $site =~ s/\Q$label\E/LABEL/ if defined $label;
    return join ' ', $res->code, $d->{message} // $d->{detail} // '-',
        $first ? ($d->{customer_id} // '') eq $first->{customer_id}
                 ? 'same-id' : 'other-id'
               : 'id',
        $first ? ($d->{site_url} // '') eq $first->{site_url}
                 ? 'same-site' : "site=$site"
               : "site=$site",
        defined $res->header('Retry-After') ? 'retry' : 'no-retry';
}

my $pend = "pend-$run\@example.com";
my $act = "act-$run\@example.com";
active($act);

# ---- 1. a re-signup under another company name keeps the site_url -----------
my $p1 = signup($pend, "Pone $run");
my $a1 = signup($act, "Aone $run");
ok t_cmp(view($a1, undef, lc "aone-$run"), view($p1, undef, lc "pone-$run"),
         '1st answers: pending and concealed active alike');
backdate();
my $p2 = signup($pend, "Ptwo $run");
my $a2 = signup($act, "Atwo $run");
ok t_cmp(view($p2, get_json($p1)), '201 Check your email to get started '
         . 'same-id same-site no-retry',
         'pending re-signup under another name keeps id and site_url');
ok t_cmp(view($a2, get_json($a1)), view($p2, get_json($p1)),
         'concealed active re-signup: the same (id and site_url kept)');
# inside the resend interval: 429 for both
my $p3 = signup($pend, "Pthree $run");
my $a3 = signup($act, "Athree $run");
ok t_cmp(view($a3), view($p3), 'inside the resend interval: the same 429');
ok t_cmp($p3->code, 429, '(which is 429)');

# ---- 2. the concealed label is taken --------------------------------------------
my $np = signup("newp-$run\@example.com", "Pone $run");
my $na = signup("newa-$run\@example.com", "Aone $run");
ok t_cmp(view($na, undef, lc "aone-$run"), view($np, undef, lc "pone-$run"),
         'the next signup of either company name: the same answer');
ok t_cmp((get_json($na) // {})->{site_url} // '',
         'https://' . lc("aone-$run") . '-2.hide.test',
         'the concealed label was taken: -2');
ok t_cmp(platform() =~ /\Q${\ lc "aone-$run" }.hide.test\E\|/ ? 1 : 0, 0,
         'the decoy label is not in the customers table');

# ---- 4. a tenant with no free slot -------------------------------------------
add_tenant(slug => 'hidefull', domain => 'full.test', nodes => [[2, 0]]);
my $act2 = "act2-$run\@example.com";
active($act2, 'hidefull');
# fill the last slot
signup("filler-$run\@example.com", "Filler $run", 'hidefull');
my ($used, $cap) = $db->selectrow_array(
    "SELECT sum(used), sum(capacity) FROM nodes n JOIN tenants t
     ON t.id = n.tenant_id WHERE t.slug = 'hidefull'");
ok t_cmp("$used/$cap", '2/2', 'the tenant is full');
my $before_full = platform();
my $nw = signup("new2-$run\@example.com", "Full $run", 'hidefull');
my $ac = signup($act2, "Full $run", 'hidefull');
ok t_cmp(view($ac), view($nw),
         'no free slot: the concealed active address gets what a new one gets');
ok t_cmp($nw->code, 503, '(which is 503)');

# nothing of all this in the platform's tables but the real signups
ok t_cmp(platform(), $before_full, 'the 503s wrote nothing');
my $row = $db->selectrow_hashref(
    "SELECT company_name, status FROM customers WHERE email = ?", undef, $act);
ok t_cmp("$row->{company_name}|$row->{status}", "Owner $act|active",
         'the concealed customer row is untouched');
my ($u, $n) = $db->selectrow_array(
    "SELECT (SELECT sum(used) FROM nodes WHERE tenant_id = ?),
            (SELECT count(*) FROM customers WHERE tenant_id = ?)", undef,
    $tid, $tid);
ok t_cmp($u, $n, 'no slot taken for a concealed answer (used = customers)');

# ---- the concealed id is the address's own, in its own tenant -------------
# (CONTRACT: derived from tenant and address) two active addresses get two
# ids, one address in two tenants two ids; each as stable as a pending one's
{
    my $other = add_tenant(slug => 'hide2', domain => 'hide2.test',
                           nodes => [[1000, 0]]);
    my ($x, $y) = ("ida-$run\@example.com", "idb-$run\@example.com");
    active($x);
    active($y);
    active($x, 'hide2');
    backdate();
    my %id = map { $_->[0] => (get_json(signup($_->[1], 'Id Co', $_->[2])) // {})->{customer_id} // '?' }
        (['x', $x, 'hide'], ['y', $y, 'hide'], ['x2', $x, 'hide2']);
    check($id{x} ne $id{y}, "two concealed addresses, two ids ($id{x} $id{y})");
    check($id{x} ne $id{x2}, "one address in two tenants, two ids ($id{x} $id{x2})");
}
