# SPDX-License-Identifier: Apache-2.0
# The connection gate (HydraSignupDBConnections) lets requests in in the
# order they came. A server of one child with one database connection: a
# signup holds it, waiting for an advisory lock the test holds (the
# per-address lock of its mailbox); six more signups arrive one after the
# other and queue at the gate; once the lock is released each is served in
# turn, in arrival order. Every request is answered 201.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use DBI ();
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd dbh reset_db add_tenant free_port
                 start_clients wait_clients wait_until check);

plan tests => 6;

my $db = dbh();
reset_db();
add_tenant(slug => 'gateco', nodes => [[1000, 0]]);
my $dir = tempdir(CLEANUP => 1);
my $APP = 'hydra-gate-order';
my $port = free_port();
my ($up, $out) = start_httpd(dir => $dir, port => $port,
    mpm => "ServerLimit 1\nStartServers 1\nThreadsPerChild 16\n"
         . "MaxRequestWorkers 16\nMinSpareThreads 16\nMaxSpareThreads 16",
    dbd_params => " application_name=$APP", dbd_keep => 1, dbd_max => 1,
    server => "HydraSignupDBConnections 1 30000\nHydraSignupReapInterval Off");
ok $up or print "# httpd did not start: $out\n";
my $url = "http://127.0.0.1:$port/v1/public/signup";

sub signup_client {
    my ($email) = @_;
    return start_clients(clients => 1, max => 1, url => $url, timeout => 60,
        body => sub { { company_name => "Gate $email", email => $email,
                        tenant_slug => 'gateco' } });
}

# the per-address lock of hold@example.com, as the module takes it
my $holder = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                          { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
$holder->do("SELECT pg_advisory_lock(hashtextextended(? || '|' || lower(?), 0))",
            undef, 'gateco', 'hold@example.com');
my $t0 = time;
my $hold = signup_client('hold@example.com');
check(wait_until(sub {
    my ($n) = $db->selectrow_array(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?
         AND wait_event_type = 'Lock'", undef, $APP);
    $n >= 1 }, 20), "the server's one connection waits for the address lock");

# six more, one after the other: each finds the connection taken
my @q;
for my $i (1 .. 6) {
    push @q, [$i, time, signup_client("queued$i\@example.com")];
    sleep 1;    # arrival order; the gate's queue cannot be seen from here
}
$holder->do("SELECT pg_advisory_unlock_all()");

my @first = wait_clients($hold, 60);
ok t_cmp(join(',', map { $_->{status} } @first), '201', 'the held signup: 201');
my @status;
for my $e (@q) {
    my ($a) = wait_clients($e->[2], 60);
    push @status, $a ? $a->{status} : 'none';
}
ok t_cmp(join(',', @status), join(',', ('201') x 6), 'the six queued signups: 201');
# the order they got the connection in: their transactions' start times
# (created_at is now(), the time of BEGIN), one connection so one at a time
my $order = join ',', map { /queued(\d)\@/ ? $1 : $_ } @{ $db->selectcol_arrayref(
    "SELECT c.email FROM customers c JOIN tenants t ON t.id = c.tenant_id
     WHERE t.slug = 'gateco' AND c.email LIKE 'queued%' ORDER BY c.created_at") };
ok t_cmp($order, '1,2,3,4,5,6', 'served in the order they arrived');
my ($sessions) = $db->selectrow_array(
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", undef, $APP);
check($sessions <= 1, "at most one session for the server ($sessions)");
$holder->disconnect;
stop_httpd($dir);
