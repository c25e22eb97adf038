# SPDX-License-Identifier: Apache-2.0
# Each child has its own database places (HydraSignupDBConnections) and a
# keep-alive connection stays with the child that accepted it, so the child
# that accepted the most connections keeps the longest queue. A request
# that had to queue, in a child with more requests in progress than the
# server's average child by more than two, gets its connection closed after
# the answer (src/httpd/dbgate.c), so that the client reconnects to
# whichever child accepts; a child alone never closes.
#
# How the crowding is made: a server of one child (StartServers 1) with one
# database connection; ten keep-alive connections, all in that child, each
# send a signup; the first holds the connection, waiting for an advisory
# lock the test holds, the nine others queue at the gate. Ten of sixteen
# threads busy is below MinSpareThreads, so the MPM starts a second child
# (ServerLimit 2), which has nothing to do. Then the lock is released.
# The first queued signup asks to close itself: a connection that closes
# anyway is not counted as moved (no HS00914).
#
# A request that did not queue never closes, however crowded its child:
# nine signups whose bodies have not all arrived keep nine threads of the
# one child busy (not at the gate), the second child starts, and a signup
# on a kept connection of the first child finds the gate free.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use DBI ();
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd dbh reset_db add_tenant free_port
                 wait_until check json_bytes http_sock http_post http_answer http_closed
                 http_closes log_since child_stats);

plan tests => 20;

my $db = dbh();
reset_db();
add_tenant(slug => 'rebal', nodes => [[1000, 0]]);
my $run = sprintf '%x%x', time, $$;
my $APP = 'hydra-rebalance';

sub children_of {
    my ($dir) = @_;
    open my $f, '<', "$dir/httpd.pid" or return 0;
    chomp(my $parent = <$f> // '');
    return scalar(child_stats($parent));
}

# a signup's body, as JSON bytes
sub signup_body {
    my ($email) = @_;
    return json_bytes()->encode({ company_name => "Rebalance $email",
                            email => $email, tenant_slug => 'rebal' });
}

# a signup on $sock; %o as http_post (headers, sent)
sub send_signup {
    my ($sock, $email, %o) = @_;
    return http_post($sock, '/v1/public/signup', signup_body($email), %o);
}

# a server of at most two children, one database place, the first child
# alone at the start
sub start_two {
    my ($dir, $port) = @_;
    return start_httpd(dir => $dir, port => $port,
        mpm => "ServerLimit 2\nStartServers 1\nThreadsPerChild 16\n"
             . "MaxRequestWorkers 32\nMinSpareThreads 8\nMaxSpareThreads 32",
        log_level => 'warn hydra_signup:debug',
        dbd_params => " application_name=$APP", dbd_keep => 1, dbd_max => 1,
        server => "HydraSignupDBConnections 1 30000\nHydraSignupReapInterval Off");
}

# One round on a server of $limit children at most: ten connections, one
# held signup, nine queued behind it. Returns the answers' statuses, which
# of them said "Connection: close" (1/0 each, held one first), the sockets,
# and the number of children when the lock was released.
sub round {
    my ($dir, $port, $tag, $kids) = @_;
    my $holder = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
        { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
    my $hold = "hold-$tag-$run\@example.com";
    $holder->do("SELECT pg_advisory_lock(hashtextextended(? || '|' || lower(?), 0))",
                undef, 'rebal', $hold);
    my @socks = map { http_sock("127.0.0.1:$port") } 0 .. 9;
    send_signup($socks[0], $hold);
    check(wait_until(sub {
        my ($n) = $db->selectrow_array(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?
             AND wait_event_type = 'Lock'", undef, $APP);
        $n >= 1 }, 20), "$tag: the one connection waits for the address lock");
    for my $i (1 .. 9) {
        send_signup($socks[$i], "q$i-$tag-$run\@example.com",
                    $i == 1 ? (headers => ['Connection: close']) : ());
        # all sent before the MPM can start the second child: with
        # AcceptFilter a connection is accepted when its data arrives, by
        # whichever child listens then
        sleep 0.1;
    }
    # the second child, when the MPM may start one (it checks once a second)
    wait_until(sub { children_of($dir) >= $kids }, 15);
    sleep 0.5;
    my $children = children_of($dir);
    $holder->do('SELECT pg_advisory_unlock_all()');
    $holder->disconnect;
    my (@status, @closed);
    for my $s (@socks) {
        my ($st, $head) = http_answer($s, 30);
        push @status, $st // 'none';
        push @closed, http_closes($head);
    }
    return (\@status, \@closed, \@socks, $children);
}

# ---- two children: the crowded one sheds connections -----------------------
my $dir = tempdir(CLEANUP => 1);
my $port = free_port();
my ($up, $out) = start_two($dir, $port);
ok $up or print "# httpd did not start: $out\n";
my $log_at = -s "$dir/error.log" // 0;
my ($status, $closed, $socks, $children) = round($dir, $port, 'two', 2);
check($children == 2, "a second child was running when the queue moved ($children)");
ok t_cmp(join(',', @$status), join(',', ('201') x 10), 'every signup: 201');
ok t_cmp($closed->[0], 0, 'the signup that did not queue keeps its connection');
# the first queued ones are let in while about ten requests are in progress
# in this child and none in the other (average five): they close
ok t_cmp(join(',', @$closed[1 .. 3]), '1,1,1',
         'the first queued signups of the crowded child: Connection: close '
         . '(the first one asked for it)');
# the last one is let in when at most a few are left in progress
ok t_cmp($closed->[9], 0, 'the last queued signup keeps its connection');
print "# Connection: close per answer: @$closed\n";
# (the second: the first queued one asked to close)
ok t_cmp(http_closed($socks->[2]), 1, 'the server closed a shed connection');
# a kept connection still carries requests
send_signup($socks->[0], "again-$run\@example.com");
my ($st) = http_answer($socks->[0], 30);
ok t_cmp($st // 'none', 201, 'a kept connection carries the next signup');
my $log = log_since("$dir/error.log", $log_at);
my $shed = () = $log =~ /HS00914: the connection closes after this answer: \d+ requests in progress in this child, \d+ in 2 children/g;
ok t_cmp($shed, scalar(grep { $_ } @$closed[2 .. 9]),
         'HS00914 (debug) once per connection moved on, not for the one '
         . 'that asked to close');
close $_ for @$socks;
stop_httpd($dir);

# ---- a request that did not queue keeps its connection ----------------------
my $dirf = tempdir(CLEANUP => 1);
my $portf = free_port();
($up, $out) = start_two($dirf, $portf);
ok $up or print "# httpd did not start: $out\n";
my @slow = map { http_sock("127.0.0.1:$portf") } 0 .. 9;
# a first answer on the tenth connection: it is the first child's now (the
# kernel hands httpd a connection only once data arrives: AcceptFilter)
send_signup($slow[0], "first-$run\@example.com");
my ($wst) = http_answer($slow[0], 30);
check(($wst // 'none') eq '201', 'a first signup on the tenth connection');
# nine bodies cut short: nine threads of the one child busy reading them
send_signup($slow[$_], "slow$_-$run\@example.com", sent => 10) for 1 .. 9;
check(wait_until(sub { children_of($dirf) >= 2 }, 15),
      'nine busy threads of sixteen: the second child started');
sleep 0.5;
send_signup($slow[0], "free-$run\@example.com");
my ($fst, $fhead) = http_answer($slow[0], 30);
ok t_cmp(($fst // 'none') . ' ' . http_closes($fhead), '201 0',
         'a signup that found the gate free, in the crowded child: 201, '
         . 'its connection kept');
# the rest of the nine bodies: each is answered
syswrite($slow[$_], substr(signup_body("slow$_-$run\@example.com"), 10))
    for 1 .. 9;
my @fstatus = map { (http_answer($_, 30))[0] // 'none' } @slow[1 .. 9];
ok t_cmp(join(',', @fstatus), join(',', ('201') x 9),
         'the nine signups, their bodies complete: 201');
close $_ for @slow;
stop_httpd($dirf);

# ---- one child: never closes ------------------------------------------------
my $dir1 = tempdir(CLEANUP => 1);
my $port1 = free_port();
($up, $out) = start_httpd(dir => $dir1, port => $port1,
    mpm => "ServerLimit 1\nStartServers 1\nThreadsPerChild 16\n"
         . "MaxRequestWorkers 16\nMinSpareThreads 8\nMaxSpareThreads 16",
    dbd_params => " application_name=$APP", dbd_keep => 1, dbd_max => 1,
    server => "HydraSignupDBConnections 1 30000\nHydraSignupReapInterval Off");
ok $up or print "# httpd did not start: $out\n";
($status, $closed, $socks, $children) = round($dir1, $port1, 'one', 1);
check($children == 1, "one child ($children)");
ok t_cmp(join(',', @$status), join(',', ('201') x 10), 'one child: every signup 201');
ok t_cmp(join(',', @$closed), '0,1,0,0,0,0,0,0,0,0',
         'one child: only the answer whose request asked closes its connection');
close $_ for @$socks;
stop_httpd($dir1);
