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
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use DBI ();
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd dbh reset_db add_tenant free_port
                 wait_until check json http_sock http_answer http_closed
                 http_closes log_since child_stats);

plan tests => 15;

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

sub send_signup {
    my ($sock, $email) = @_;
    my $body = json()->encode({ company_name => "Rebalance $email",
                                email => $email, tenant_slug => 'rebal' });
    local $SIG{PIPE} = 'IGNORE';
    return syswrite($sock, "POST /v1/public/signup HTTP/1.1\r\n"
        . "Host: ${*$sock}{hs_hp}\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body");
}

# One round on a server of $limit children at most: ten connections, one
# held signup, nine queued behind it. Returns the answers' statuses, which
# of them said "Connection: close" (1/0 each, held one first), the sockets,
# and the number of children when the lock was released.
sub round {
    my ($dir, $port, $tag) = @_;
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
        send_signup($socks[$i], "q$i-$tag-$run\@example.com");
        sleep 0.1;
    }
    # the second child, when the MPM may start one (it checks once a second)
    wait_until(sub { children_of($dir) >= 2 }, 8);
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
my ($up, $out) = start_httpd(dir => $dir, port => $port,
    mpm => "ServerLimit 2\nStartServers 1\nThreadsPerChild 16\n"
         . "MaxRequestWorkers 32\nMinSpareThreads 8\nMaxSpareThreads 32",
    log_level => 'warn hydra_signup:debug',
    dbd_params => " application_name=$APP", dbd_keep => 1, dbd_max => 1,
    server => "HydraSignupDBConnections 1 30000\nHydraSignupReapInterval Off");
ok $up or print "# httpd did not start: $out\n";
my $log_at = -s "$dir/error.log" // 0;
my ($status, $closed, $socks, $children) = round($dir, $port, 'two');
check($children == 2, "a second child was running when the queue moved ($children)");
ok t_cmp(join(',', @$status), join(',', ('201') x 10), 'every signup: 201');
ok t_cmp($closed->[0], 0, 'the signup that did not queue keeps its connection');
# the first queued ones are let in while about ten requests are in progress
# in this child and none in the other (average five): they close
ok t_cmp(join(',', @$closed[1 .. 3]), '1,1,1',
         'the first queued signups of the crowded child: Connection: close');
# the last one is let in when at most a few are left in progress
ok t_cmp($closed->[9], 0, 'the last queued signup keeps its connection');
print "# Connection: close per answer: @$closed\n";
ok t_cmp(http_closed($socks->[1]), 1, 'the server closed a shed connection');
# a kept connection still carries requests
send_signup($socks->[0], "again-$run\@example.com");
my ($st) = http_answer($socks->[0], 30);
ok t_cmp($st // 'none', 201, 'a kept connection carries the next signup');
my $log = log_since("$dir/error.log", $log_at);
my $shed = () = $log =~ /HS00914: the connection closes after this answer: \d+ requests in progress in this child, \d+ in 2 children/g;
ok t_cmp($shed, scalar(grep { $_ } @$closed), 'HS00914 (debug) once per closed connection');
close $_ for @$socks;
stop_httpd($dir);

# ---- one child: never closes ------------------------------------------------
my $dir1 = tempdir(CLEANUP => 1);
my $port1 = free_port();
($up, $out) = start_httpd(dir => $dir1, port => $port1,
    mpm => "ServerLimit 1\nStartServers 1\nThreadsPerChild 16\n"
         . "MaxRequestWorkers 16\nMinSpareThreads 8\nMaxSpareThreads 16",
    dbd_params => " application_name=$APP", dbd_keep => 1, dbd_max => 1,
    server => "HydraSignupDBConnections 1 30000\nHydraSignupReapInterval Off");
ok $up or print "# httpd did not start: $out\n";
($status, $closed, $socks, $children) = round($dir1, $port1, 'one');
check($children == 1, "one child ($children)");
ok t_cmp(join(',', @$status), join(',', ('201') x 10), 'one child: every signup 201');
ok t_cmp(join(',', @$closed), join(',', ('0') x 10),
         'one child: no answer closes its connection');
close $_ for @$socks;
stop_httpd($dir1);
