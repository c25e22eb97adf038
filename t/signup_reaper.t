# SPDX-License-Identifier: Apache-2.0
# A slot is held only while the signup's code can still be used (CONTRACT
# section 1): the reaper inside httpd gives back the slots of expired and
# void codes within seconds, with no request arriving; pending rows stay
# (node_id NULL) and a re-signup takes a slot again (503 when none is free);
# verified customers keep theirs; `used` always equals the holders. Two
# httpd servers on one database release each slot exactly once, and the
# reaper survives a database restart.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use File::Temp qw(tempdir);
use LWP::UserAgent ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd httpd_ctl dbh reset_db add_tenant signup_code verify_code get_json
                 wait_until wait_port free_port log_since
                 json_bytes pg_stop pg_start check);

plan tests => 55, have_lwp;

my $db = dbh();
reset_db();
my $errlog = Apache::Test::vars('t_logs') . '/error_log';
my $log_start = -s $errlog // 0;
my $dir = tempdir(CLEANUP => 1);
my $BOUND = 20; # seconds: far beyond a 2 s code plus a 1 s reaper tick

sub node_of {
    my ($slug) = @_;
    my ($id) = $db->selectrow_array(
        "SELECT n.id FROM nodes n JOIN tenants t ON t.id = n.tenant_id
         WHERE t.slug = ?", undef, $slug);
    return $id;
}
sub used { (dbh()->selectrow_array("SELECT used FROM nodes WHERE id = ?",
                                   undef, $_[0]))[0] }
sub holders {
    (dbh()->selectrow_array("SELECT count(*) FROM customers WHERE node_id = ?",
                            undef, $_[0]))[0];
}
sub cust {
    dbh()->selectrow_hashref("SELECT * FROM customers WHERE id = ?", undef,
                             $_[0]);
}
sub tenant_id {
    (dbh()->selectrow_array("SELECT id FROM tenants WHERE slug = ?", undef,
                            $_[0]))[0];
}
# used and holders in one statement (one snapshot): the reaper may release
# a slot between two
sub used_holders {
    join '/', dbh()->selectrow_array(
        "SELECT used, (SELECT count(*) FROM customers c WHERE c.node_id = n.id)
           FROM nodes n WHERE n.id = ?", undef, $_[0]);
}
sub consistent {
    my ($node, $want, $name) = @_;
    ok t_cmp(used_holders($node), "$want/$want", $name);
}
# waits (bounded, database reads only) until the node's used is $want
sub wait_used {
    my ($node, $want) = @_;
    return wait_until(sub { used($node) == $want }, $BOUND);
}
# The reaper's released counts for tenant in the log text (HS00901 lines).
sub released_in {
    my ($text, $tenant) = @_;
    my $n = 0;
    for my $line ($text =~ /^.*HS00901: .*$/mg) {
        $n += $1 while $line =~ /tenant \Q$tenant\E node [0-9a-f-]+: (\d+)/g;
    }
    return $n;
}
sub signup_as {
    my ($module, %a) = @_;
    Apache::TestRequest::module($module);
    return signup_code(tenant => 'reapco', company => 'Reap Co', %a);
}

# ---- capacity filled by signups that never verify -----------------------
add_tenant(slug => 'reapco', nodes => [[4, 0]]);
my $node = node_of('reapco');
my $tid = tenant_id('reapco');

# a verified customer (default 900 s code): keeps its slot throughout
my ($kept, $kcode) = signup_as('vhost_signup', email => 'kept@reap.example');
Apache::TestRequest::module('vhost_signup');
ok t_cmp(verify_code('kept@reap.example', $kcode, 'reapco')->code, 200,
         'a verified customer');

my %id;
for my $who (qw(p1 p2 p3)) {
    my ($cid, undef, $res) = signup_as('vhost_reap', email => "$who\@reap.example");
    $id{$who} = $cid;
    ok t_cmp($res->code, 201, "$who signs up (2 s code)");
}
# the 2 s codes may have expired meanwhile on a slow machine: used is 4 or
# already lower, but always the number of holders
my ($u, $h) = split m{/}, used_holders($node);
ok t_cmp($u, $h, 'used = holders after the signups');

# ---- released after expiry, with no request arriving ---------------------
check wait_used($node, 1), 'the three expired codes give their slots back';
consistent($node, 1, 'only the verified customer holds a slot');
ok t_cmp(cust($kept)->{node_id}, $node, 'the verified customer keeps it');
for my $who (qw(p1 p2 p3)) {
    my $c = cust($id{$who});
    check $c && $c->{status} eq 'pending' && !defined $c->{node_id},
          "$who: the pending row stays, without a node";
}
my $released = 0;
wait_until(sub { ($released = released_in(log_since($errlog, $log_start), $tid)) >= 3 }, 5);
ok t_cmp($released, 3, 'the reaper logged three released slots');

# ---- a re-signup keeps its customer_id and takes a slot again ------------
my ($again, $acode, $ares) = signup_as('vhost_reap_long', email => 'p1@reap.example');
ok t_cmp($ares->code, 201, 're-signup after the release: 201');
ok t_cmp($again, $id{p1}, 'the same customer_id');
ok t_cmp(cust($id{p1})->{node_id}, $node, 'on the node again');
consistent($node, 2, 'used 2 = holders');

# fill the node with long-lived codes, then: no slot, 503, nothing written
my %code;
for my $who (qw(n1 n2)) {
    my ($cid, $cd, $res) = signup_as('vhost_reap_long', email => "$who\@reap.example");
    $id{$who} = $cid;
    $code{$who} = $cd;
    ok t_cmp($res->code, 201, "$who takes the last slots");
}
consistent($node, 4, 'full: used 4 = holders');
my ($p2code_before) = $db->selectrow_array(
    "SELECT code_hmac FROM hydra_signup_codes WHERE customer_id = ?", undef, $id{p2});
my (undef, undef, $full) = signup_as('vhost_reap_long', email => 'p2@reap.example');
ok t_cmp($full->code, 503, 'a released re-signup on a full node: 503');
ok t_cmp(get_json($full)->{detail}, 'No shared hosting capacity available',
         'the 503 says why');
check !defined cust($id{p2})->{node_id}, 'p2 still holds no slot';
my ($p2code_after) = $db->selectrow_array(
    "SELECT code_hmac FROM hydra_signup_codes WHERE customer_id = ?", undef, $id{p2});
ok t_cmp($p2code_after, $p2code_before, 'its code was not renewed (rolled back)');
my (undef, undef, $full2) = signup_as('vhost_reap_long', email => 'n3@reap.example');
ok t_cmp($full2->code, 503, 'a new signup on a full node: 503');
consistent($node, 4, 'still used 4 = holders');

# ---- a void code (too many wrong guesses) gives its slot back ------------
my $n1code = $code{n1};
check defined $n1code && $n1code =~ /^\d{6}$/, 'n1 got its code by mail';
# a copy for the arithmetic: a string used as a number would be sent as one
my $wrong = do { my $n = "$n1code"; sprintf '%06d', ($n + 1) % 1000000 };
Apache::TestRequest::module('vhost_reap_long');
my @st = map { verify_code('n1@reap.example', $wrong, 'reapco')->code } 1 .. 3;
ok t_cmp("@st", '400 400 429', 'two wrong guesses, then the code is void');
check wait_used($node, 3), 'the void code gives its slot back';
consistent($node, 3, 'used 3 = holders');
check !defined cust($id{n1})->{node_id} && cust($id{n1})->{status} eq 'pending',
      'n1 stays pending, without a node';
ok t_cmp(verify_code('n1@reap.example', $n1code, 'reapco')->code, 429,
         'the right code no longer works');

# the freed slot goes to the re-signup that was refused before
my ($p2again, $p2code, $p2res) = signup_as('vhost_reap_long', email => 'p2@reap.example');
ok t_cmp($p2res->code, 201, 'p2 re-signs up into the freed slot');
ok t_cmp($p2again, $id{p2}, 'with its customer_id');
consistent($node, 4, 'used 4 = holders');
# and a re-signed-up customer verifies with its new code
Apache::TestRequest::module('vhost_reap_long');
ok t_cmp(verify_code('p1@reap.example', $acode, 'reapco')->code, 200,
         'p1 verifies with the code of its re-signup');
my $p1 = cust($id{p1});
ok t_cmp("$p1->{status} $p1->{node_id}", "active $node", 'active, on the node');
consistent($node, 4, 'used 4 = holders after the verify');

# ---- two httpd servers on one database: each slot released once ---------
my $port2 = free_port();
my ($up, $out) = start_httpd(dir => $dir, port => $port2, log_level => 'notice',
    mpm => "StartServers 2\nThreadsPerChild 10\nMaxRequestWorkers 40",
    dbd_keep => 2, dbd_max => 10, dbd_exptime => 30,
    server => 'HydraSignupReapInterval 1', location => "    HydraSignupCodeTTL 2\n");
ok $up or print "# second httpd did not start: $out\n";
sub stop_second { stop_httpd($dir) }
END { stop_second() }

my $port1 = do {
    Apache::TestRequest::module('vhost_reap');
    (split /:/, Apache::TestRequest::hostport())[1];
};
my $ua = LWP::UserAgent->new(timeout => 30, keep_alive => 1);
sub post_to {
    my ($port, $slug, $email) = @_;
    return $ua->post("http://127.0.0.1:$port/v1/public/signup",
        'Content-Type' => 'application/json',
        Content => json_bytes()->encode({ company_name => 'Twin Co',
            email => $email, tenant_slug => $slug }))->code;
}

add_tenant(slug => 'reap2', nodes => [[12, 0], [12, 0]]);
my $t2 = tenant_id('reap2');
my @n2 = @{ $db->selectcol_arrayref(
    "SELECT id FROM nodes WHERE tenant_id = ? ORDER BY id", undef, $t2) };
my $log2_start = -s "$dir/error.log" // 0;
my $log1_mark = -s $errlog;
my @codes = map { post_to($_ % 2 ? $port2 : $port1, 'reap2', "twin$_\@reap.example") }
    1 .. 24;
ok t_cmp(join(' ', sort { $a <=> $b } @codes), join(' ', (201) x 24),
         'twenty-four signups through both servers');
check wait_until(sub { used($n2[0]) + used($n2[1]) == 0 }, $BOUND),
      'every slot goes back';
ok t_cmp(holders($n2[0]) + holders($n2[1]), 0, 'no holder left, used 0');
my $total = 0;
wait_until(sub {
    $total = released_in(log_since($errlog, $log1_mark), $t2)
           + released_in(log_since("$dir/error.log", $log2_start), $t2);
    $total >= 24;
}, 5);
ok t_cmp($total, 24, 'the reapers of both servers released 24 slots in all');
my $by1 = released_in(log_since($errlog, $log1_mark), $t2);
my $by2 = released_in(log_since("$dir/error.log", $log2_start), $t2);
print "# released by server 1: $by1, by server 2: $by2\n";
my ($pend) = $db->selectrow_array(
    "SELECT count(*) FROM customers WHERE tenant_id = ? AND status = 'pending'
     AND node_id IS NULL", undef, $t2);
ok t_cmp($pend, 24, 'the 24 pending rows stay');

# ---- a graceful restart of the second server, then a database restart ---
# (the second server's reaper must still run afterwards: it logs the outage)
httpd_ctl($dir, 'graceful');
check wait_until(sub { log_since("$dir/error.log", $log2_start) =~ /AH00171|resuming normal operations/ }, 15),
      'second httpd restarted gracefully';
add_tenant(slug => 'reap3', nodes => [[6, 0]]);
my $t3 = tenant_id('reap3');
my $n3 = node_of('reap3');
$log1_mark = -s $errlog;
$log2_start = -s "$dir/error.log";
my @c3 = map { post_to($_ % 2 ? $port2 : $port1, 'reap3', "down$_\@reap.example") }
    1 .. 6;
ok t_cmp("@c3", join(' ', (201) x 6), 'six signups');
# stop PostgreSQL at once (the codes are still valid or just expired; either
# way some slots are still held when it goes down, or are released now)
check pg_stop(), 'PostgreSQL stopped';
check wait_until(sub {
    log_since($errlog, $log1_mark) =~ /HS00903: /
        && log_since("$dir/error.log", $log2_start) =~ /HS00903: /
}, $BOUND), 'both reapers log that the database is gone';
sleep 3; # a few more failing runs: they must stay quiet (checked below)
check pg_start(), 'PostgreSQL started again';
$db = dbh();
check wait_used($n3, 0), 'the slots are released after the restart';
consistent($n3, 0, 'used 0 = holders');
check wait_until(sub {
    log_since($errlog, $log1_mark) =~ /HS00904: /
        && log_since("$dir/error.log", $log2_start) =~ /HS00904: /
}, 10), 'both reapers log that the database is back';
my $l1 = log_since($errlog, $log1_mark);
my $l2 = log_since("$dir/error.log", $log2_start);
my @down1 = $l1 =~ /HS00903: /g;
my @down2 = $l2 =~ /HS00903: /g;
ok t_cmp(scalar(@down1) . ' ' . scalar(@down2), '1 1',
         'the outage is logged once per server');
ok t_cmp(released_in($l1, $t3) + released_in($l2, $t3), 6,
         'six slots released in all');

# both servers kept clean logs (no crash)
stop_second();
my $all2 = log_since("$dir/error.log", 0);
my @bad2 = $all2 =~ /^.*(?:exit signal|Segmentation|\[(?:emerg|alert|crit)\]).*$/mg;
print STDERR "# second httpd: $_\n" for @bad2;
ok t_cmp(join("\n", @bad2), '', 'second httpd: no crash, nothing critical');
my $all1 = log_since($errlog, $log_start);
my @bad1 = $all1 =~ /^.*(?:exit signal|Segmentation).*$/mg;
print STDERR "# first httpd: $_\n" for @bad1;
ok t_cmp(join("\n", @bad1), '', 'first httpd: no crash');
