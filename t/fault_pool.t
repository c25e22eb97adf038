# SPDX-License-Identifier: Apache-2.0
# The connection pool exhausted (issue 6, "Faults"): vhost_pool has
# DBDMax 2 per child against 10 threads per child, and 12 parallel clients
# (6x DBDMax). Every request is answered (201 or 503) within a bounded time,
# none hangs:
#  - a healthy database: requests wait for a pooled connection, all 201;
#  - a stalled database (the test holds the tenant's node rows locked for
#    16 s, as a stuck platform job would): the pooled connections are held
#    for lock_timeout (0.5 s, set in DBDParams) at most, so every request -
#    those waiting for a connection too - gets its 503 long before the lock
#    is released, and nothing is written; afterwards 201 again.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use DBI ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant check httpd_pid start_clients
                 client_answers wait_clients wait_until tally
                 invariant_errors mail_errors log_since child_stats);

plan tests => 17, have_lwp;

reset_db();
my $tenant = add_tenant(slug => 'poolco', nodes => [[2000, 0]]);
my $url = Apache::TestRequest::module2url('vhost_pool', { path => '/v1/public/signup' });
my $errlog = Apache::Test::vars('t_logs') . '/error_log';
my $log_size = -s $errlog;
my $parent = httpd_pid();
my $N = 12;
my @all;

sub children { return scalar(child_stats($parent)) }
sub pool_conns {
    my ($c) = dbh()->selectrow_array(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hydra-pool'");
    return $c;
}
sub body {
    my ($tag) = @_;
    return sub { return { company_name => "Pool $tag $_[0] $_[1]",
                          email => "$tag$_[0]-$_[1]\@example.com",
                          tenant_slug => 'poolco' } };
}

# ---- healthy database: the clients queue for the 2 connections --------------
my $t0 = time;
my $h = start_clients(clients => $N, max => 10, url => $url, timeout => 30,
                      together => 1, body => body('a'));
my ($most, $kids) = (0, 0);
while (client_answers($h) < $N * 10 && time - $t0 < 30) {
    my $c = pool_conns();
    ($most, $kids) = ($c, children()) if $c > $most;
    sleep 0.02;
}
my @ans = wait_clients($h, 30);
push @all, @ans;
ok t_cmp($h->{hung}, 0, 'healthy: no client hung');
ok t_cmp(tally(map { $_->{status} } @ans), '201:' . ($N * 10), "healthy: $N x 10 signups, all 201");
my $slowest = 0;
$_->{secs} > $slowest and $slowest = $_->{secs} for @ans;
check($slowest < 10, sprintf 'healthy: slowest %.2f s', $slowest);
check($most >= 1 && $most <= 2 * $kids,
      "at most DBDMax connections per child ($most for $kids children)");

# ---- stalled database ------------------------------------------------------
my $locker = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                          { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
$locker->begin_work;
$locker->do("SELECT id FROM nodes WHERE tenant_id = ? FOR UPDATE", undef, $tenant);
my $stop = "$ENV{HYDRA_STATE}/fault-pool.stop";
unlink $stop;
$h = start_clients(clients => $N, max => 1000, url => $url, timeout => 30,
                   together => 1, stop => $stop, pause_503 => 0.05, body => body('b'));
sleep 16;    # the stuck job holds the lock this long
my @during = client_answers($h);
$locker->commit;    # the stuck job ends
# afterwards the same clients succeed again
wait_until(sub { grep { $_->{status} eq '201' } client_answers($h) }, 10);
sleep 0.5;
open my $sf, '>', $stop or die;
close $sf;
@ans = wait_clients($h, 40);
unlink $stop;
push @all, @ans;
$locker->disconnect;

ok t_cmp($h->{hung}, 0, 'stalled: no client hung');
my @odd = grep { $_->{status} !~ /^(201|503)$/ } @ans;
ok t_cmp(tally(map { $_->{status} } @odd), '', 'stalled: every answer 201 or 503');
check(@during >= $N, scalar(@during) . ' answers while the lock was held (' .
      tally(map { $_->{status} } @during) . ')');
ok t_cmp(scalar(grep { $_->{status} ne '503' } @during), 0, 'while locked: all 503');
$slowest = 0;
$_->{secs} > $slowest and $slowest = $_->{secs} for @ans;
# a request sent in the lock's first 4.5 s that waited for it would take
# more than 11.5 s (and every answer during the lock is a 503, above); the
# margin is for a loaded machine (ASan, two shared cores), not a speed target
check($slowest < 11.5, sprintf 'slowest answer %.2f s: bounded by lock_timeout, not by the 16 s lock', $slowest);
my $per_client = 1;
for my $c (1 .. $N) {
    $per_client = 0 unless grep { $_->{client} == $c } @during;
}
check($per_client, 'every client got answers while the pool was stuck (none waited it out)');
check(scalar(grep { $_->{status} eq '201' } @ans) >= 1, 'lock released: 201 again');

# ---- nothing lost ----------------------------------------------------------
my ($used_mid) = dbh()->selectrow_array(
    "SELECT count(*) FROM customers WHERE tenant_id = ? AND email LIKE 'b%'", undef, $tenant);
ok t_cmp($used_mid, scalar(grep { $_->{status} eq '201' } @ans),
         'a customer for every 201 of the stalled run, none for a 503');
my @bad = invariant_errors($tenant);
ok t_cmp("@bad", '', 'slots, customers and codes consistent');
my ($mail_bad, $silent) = mail_errors($tenant, \@all);
ok t_cmp("@$mail_bad", '', 'every 201 has its message; no message without a customer; tmp/ empty');
ok t_cmp($silent, 0, 'no committed signup without its 201');
my $tail = log_since($errlog, $log_size);
# the slot statement (a new address's: hydra_signup_new_customer) is sent
# with its COMMIT (HS00211); the fallback path after a full node logs HS00203
check(scalar($tail =~ /HS00(?:211: hydra_signup_(?:new_customer|place) with COMMIT|203: query hydra_signup_take_slot_spread) failed: .*lock timeout/),
      'the operator is told (HS00211 ... lock timeout)');
check(scalar($tail !~ /exit signal|Segmentation fault/), 'no child process crashed');
printf "# fault_pool: healthy %d requests (%s), stalled %d requests (%s), %d while locked; "
    . "max %d pooled connections for %d children; lost: %s\n",
    $N * 10, tally(map { $_->{status} } @all[0 .. $N * 10 - 1]), scalar @ans,
    tally(map { $_->{status} } @ans), scalar @during, $most, $kids,
    (@bad || @$mail_bad || $silent) ? 'see failures' : 'nothing';
