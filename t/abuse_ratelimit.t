# SPDX-License-Identifier: Apache-2.0
# Per-client rate limits (issue 6, "Abuse protection"): signup and verify
# over the limit get 429 + Retry-After + a JSON detail and cause no database
# work at all (not even with PostgreSQL down); the counters are shared by
# every child process; they are keyed on r->useragent_ip (other clients,
# simulated through mod_remoteip, are not limited) and kept per virtual host.
# vhost_limits (t/conf/hydra_abuse.conf.in): signup 3/60 s, verify 4/60 s.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json check pg_do
                 httpd_pid spool_recipients start_clients wait_clients
                 tally wait_until log_since);

plan tests => 38, have_lwp;

dbh();
reset_db();
my $tenant = add_tenant(slug => 'abuse', nodes => [[1000, 0]]);
my $SIGNUP = '/v1/public/signup';
my $VERIFY = '/v1/public/signup/verify';

sub body { return { company_name => 'Abuse Co', email => $_[0], tenant_slug => 'abuse' } }
sub from { ('X-Forwarded-For' => shift) }
sub signup { my ($email, $ip) = @_; post_json($SIGNUP, body($email), $ip ? from($ip) : ()) }
sub customers {
    my ($email) = @_;
    my ($c) = dbh()->selectrow_array(
        "SELECT count(*) FROM customers WHERE lower(email) = lower(?)", undef,
        $email);
    return $c;
}
sub is_limited {
    my ($res, $name) = @_;
    my $ra = $res->header('Retry-After') // '';
    my $d = get_json($res);
    check($res->code == 429 && $ra =~ /^\d+$/ && $ra >= 1 && $ra <= 61
          && ref $d eq 'HASH' && ($d->{detail} // '') =~ /too many requests/i
          && ($res->header('Content-Type') // '') =~ m{^application/json}
          && ($res->header('Cache-Control') // '') eq 'no-store',
          "$name: 429, Retry-After $ra, JSON detail, no-store");
}

# ---- counters are per virtual host -----------------------------------------
# The main server (limit 100000) and vhost_limits (3) see the same client
# 127.0.0.1: traffic to one must not use up the other's budget.
Apache::TestRequest::module('default');
post_json($SIGNUP, {}) for 1 .. 5;    # 422s, counted on the main server
Apache::TestRequest::module('vhost_limits');
my $res = signup('direct@example.com');
ok t_cmp($res->code, 201, 'vhost_limits: 127.0.0.1 not limited by its main-server traffic');

# ---- signup over the limit -------------------------------------------------
my $A = '203.0.113.10';
my @st = map { signup("a$_\@example.com", $A)->code } 1 .. 3;
ok t_cmp("@st", '201 201 201', 'three signups within the limit');
$res = signup('over@example.com', $A);
is_limited($res, 'fourth signup');
ok t_cmp(customers('over@example.com'), 0, 'over the limit: no customer row');
ok t_cmp(spool_recipients()->{'over@example.com'} // 0, 0, 'over the limit: no mail');
$res = signup('over2@example.com', $A);
ok t_cmp($res->code, 429, 'fifth signup: still 429');
# an over-limit request is not read at all: even a broken body gets 429
$res = post_json($SIGNUP, '{"not json', from($A));
ok t_cmp($res->code, 429, 'malformed body over the limit: 429 (no parsing)');

# ---- verify over the limit -------------------------------------------------
my $V = '203.0.113.20';
$res = signup('victim@example.com', '203.0.113.21');
ok t_cmp($res->code, 201, 'signup of the verify victim');
my $victim = (get_json($res) // {})->{customer_id} // '';
sub attempts {
    my ($a) = dbh()->selectrow_array(
        "SELECT attempts FROM hydra_signup_codes WHERE customer_id = ?", undef,
        $victim);
    return $a // -1;
}
my $vbody = { email => 'victim@example.com', code => '000000', tenant_slug => 'abuse' };
@st = map { post_json($VERIFY, $vbody, from($V))->code } 1 .. 4;
ok t_cmp("@st", '400 400 400 400', 'four wrong guesses within the limit: 400');
ok t_cmp(attempts(), 4, 'four attempts counted');
$res = post_json($VERIFY, $vbody, from($V));
is_limited($res, 'fifth verify');
ok t_cmp(attempts(), 4, 'over the limit: the attempt never reached the database');
# the signup and verify counters are separate
ok t_cmp(signup('sv@example.com', $V)->code, 201, 'a verify-limited client may still sign up');

# ---- with PostgreSQL stopped, over the limit is still 429 -------------------
check(pg_do('stop'), 'PostgreSQL stopped');
$res = signup('down@example.com', $A);
is_limited($res, 'signup over the limit, database down');
$res = post_json($VERIFY, $vbody, from($V));
is_limited($res, 'verify over the limit, database down');
$res = signup('down2@example.com', '203.0.113.30');
ok t_cmp($res->code, 503, 'within the limit, database down: 503 (the database really is down)');
check(pg_do('restart'), 'PostgreSQL restarted');
# pooled connections notice the restart on first use: a few tries at most,
# each from another address
my $code = 0;
for my $i (1 .. 20) {
    $code = signup("back$i\@example.com", "203.0.113.1$i")->code;
    last if $code == 201;
    sleep 0.25;
}
ok t_cmp($code, 201, 'signups work again after the restart');
ok t_cmp(customers('down@example.com') + customers('down2@example.com'), 0,
         'nothing written while down');

# ---- counters shared by every child process --------------------------------
# Load first so that the MPM runs more than one child (it spawns one when
# its idle threads run short), then 12 clients x 4 parallel signups from one
# address: never more than 3 admitted, whichever child answered.
my $limits = Apache::TestRequest::module2url('vhost_limits', { path => $SIGNUP });
my @children = HydraTest::warm_children(url => $limits, tag => 'abuse',
    headers => sub { from("192.0.2.$_[0]") });
check(@children >= 2, 'httpd runs ' . scalar(@children) . ' child processes');

my $P = '203.0.113.40';
my $log = Apache::Test::vars('t_logs') . '/abuse_access_log';
my $log_from = -s $log // 0;
my $t0 = time;
my $h = start_clients(clients => 12, max => 4, url => $limits,
    body => sub { body("p$_[0]-$_[1]\@example.com") }, headers => sub { from($P) },
    timeout => 20);
my @ans = wait_clients($h, 40);
ok t_cmp(scalar @ans, 48, 'every parallel request answered');
ok t_cmp($h->{hung}, 0, 'no client hung');
my @admitted = grep { $_->{status} ne '429' } @ans;
ok t_cmp(tally(map { $_->{status} } @ans), '201:3 429:45', 'exactly the limit admitted');
my ($rows) = dbh()->selectrow_array(
    "SELECT count(*) FROM customers WHERE email LIKE 'p%-%\@example.com'");
ok t_cmp($rows, 3, 'three customers, no more');
# which processes answered (the access log's %P; it is written after each
# answer has gone out)
my @lines;
wait_until(sub { (@lines = log_since($log, $log_from) =~ /^(\d+) \Q$P\E /mg) >= 48 }, 5);
my %pids = map { $_ => 1 } @lines;
check(keys %pids >= 2,
      'the parallel requests were answered by ' . scalar(keys %pids) . ' processes');
ok t_cmp(scalar(grep { $_->{secs} > 10 } @ans), 0, 'none took longer than 10 s');

# ---- another client address is not limited ---------------------------------
ok t_cmp(signup('other@example.com', '203.0.113.41')->code, 201,
         'another client (X-Forwarded-For) is not limited');
ok t_cmp(signup('same@example.com', $P)->code, 429, 'the limited client still is');
ok t_cmp(post_json($VERIFY, $vbody, from('203.0.113.41'))->code, 400,
         'another client may verify');
# the connection address is 127.0.0.1 for all of them: the key is the
# client mod_remoteip found (r->useragent_ip), so a proxy's own address
# does not limit everyone behind it
$res = signup('direct2@example.com');
ok t_cmp($res->code, 201, 'the proxy address itself (127.0.0.1) is its own client');

# ---- IPv6: one /64 is one client -----------------------------------------------
# a host usually holds a whole /64 and could take a fresh address for
# every request
@st = map { signup("v6-$_\@example.com", "2001:db8:1:2::$_")->code } qw(a b c);
ok t_cmp("@st", '201 201 201', 'IPv6: three addresses of one /64 within the limit');
ok t_cmp(signup('v6-d@example.com', '2001:db8:1:2:ffff:1:2:3')->code, 429,
         'IPv6: a fourth address of the same /64: 429');
ok t_cmp(signup('v6-e@example.com', '2001:db8:1:3::a')->code, 201,
         'IPv6: the next /64 is another client');

# ---- the main server's limit is separate and not reached -------------------
Apache::TestRequest::module('default');
ok t_cmp(post_json($SIGNUP, {})->code, 422, 'main server: not limited by vhost_limits traffic');
Apache::TestRequest::module('vhost_limits');

# ---- invariants ------------------------------------------------------------
my ($bad) = dbh()->selectrow_array(
    "SELECT count(*) FROM nodes n WHERE n.tenant_id = ? AND n.used <>
     (SELECT count(*) FROM customers c WHERE c.node_id = n.id)", undef, $tenant);
ok t_cmp($bad, 0, 'node used = its customers');
my ($total) = dbh()->selectrow_array(
    "SELECT count(*) FROM customers WHERE tenant_id = ?", undef, $tenant);
my $mails = 0;
$mails += $_ for values %{ spool_recipients() };
ok t_cmp($mails, $total, 'one message per customer, none for a refused request');
my ($lost) = dbh()->selectrow_array(
    "SELECT count(*) FROM customers WHERE tenant_id = ? AND node_id IS NULL", undef, $tenant);
ok t_cmp($lost, 0, 'every customer has its slot');
printf "# abuse_ratelimit: %d customers, %d messages\n", $total, $mails;
END { pg_do('restart') if $code && $code != 201 }
