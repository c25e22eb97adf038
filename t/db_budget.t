# SPDX-License-Identifier: Apache-2.0
# The connection budget of one httpd server: with HydraSignupDBConnections
# equal to DBDMax, the PostgreSQL sessions the server holds never exceed
# ServerLimit x DBDMax under a flood of 200 connections, and a request that
# cannot get a connection within the configured wait gets a 503 with
# Retry-After instead of hanging.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use DBI ();
use File::Temp qw(tempdir);
use IO::Select ();
use IO::Socket::INET ();
use Scalar::Util qw(refaddr);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd dbh reset_db add_tenant json_bytes wait_port free_port
                 tally check);

plan tests => 17;

my $db = dbh();
reset_db();
my $dir = tempdir(CLEANUP => 1);
my $APP = 'hydra-budget';
my ($LIMIT, $DBDMAX) = (2, 3);
my $BOUND = $LIMIT * $DBDMAX;

# ---- a server with two children of 25 threads and 3 connections each ----
my $port = free_port();
my ($up, $out) = start_httpd(dir => $dir, port => $port,
    mpm => "ServerLimit $LIMIT\nStartServers $LIMIT\nThreadsPerChild 25\n"
         . "MaxRequestWorkers 50\nMinSpareThreads 25\nMaxSpareThreads 50\n"
         . "ListenBacklog 511",
    dbd_params => " application_name=$APP", dbd_keep => $DBDMAX,
    dbd_max => $DBDMAX,
    server => "HydraSignupDBConnections $DBDMAX 1000\nHydraSignupReapInterval Off");
ok $up or print "# httpd did not start: $out\n";
sub stop_server { stop_httpd($dir) }
END { stop_server() }

# a session of its own for sampling (outside any transaction: a
# transaction would see one frozen snapshot of pg_stat_activity)
my $mon = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                       { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
sub sessions {
    ($mon->selectrow_array(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
        undef, $APP))[0];
}

# Opens n connections at once, each sending one signup, and reads every
# answer (bounded: $secs). $tick->(answered) runs every 50 ms. Returns
# ([status, retry-after, body], ...) and the highest session count seen.
sub flood {
    my ($n, $slug, $tag, $secs, $tick) = @_;
    my (@socks, %buf);
    for my $i (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 10);
        next unless $s;
        my $body = json_bytes()->encode({ company_name => "Flood $tag $i",
            email => "$tag$i\@budget.example", tenant_slug => $slug });
        syswrite $s, "POST /v1/public/signup HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nContent-Length: "
            . length($body) . "\r\nConnection: close\r\n\r\n$body";
        push @socks, $s;
        $buf{ refaddr $s } = '';
    }
    my $sel = IO::Select->new(@socks);
    my ($max, $answered) = (0, 0);
    my $until = time + $secs;
    while ($sel->count && time < $until) {
        for my $s ($sel->can_read(0.05)) {
            my $got = sysread $s, my $chunk, 65536;
            if ($got) {
                $buf{ refaddr $s } .= $chunk;
            }
            else {
                $sel->remove($s);
                close $s;
                $answered++;
            }
        }
        my $now = sessions();
        $max = $now if $now > $max;
        $tick->($answered) if $tick;
    }
    my @res;
    for my $s (@socks) {
        my $raw = $buf{ refaddr $s };
        my ($status) = $raw =~ m{^HTTP/1\.\d (\d{3})};
        my ($retry) = $raw =~ m{^Retry-After: *(\d+)}mi;
        my (undef, $body) = split /\r\n\r\n/, $raw, 2;
        push @res, [$status // 0, $retry, $body // ''];
    }
    push @res, [0, undef, ''] for @socks + 1 .. $n; # never connected
    return (\@res, $max);
}

sub used_of {
    my ($slug) = @_;
    (dbh()->selectrow_array(
        "SELECT sum(n.used) FROM nodes n JOIN tenants t ON t.id = n.tenant_id
         WHERE t.slug = ?", undef, $slug))[0];
}
sub customers_of {
    my ($slug) = @_;
    (dbh()->selectrow_array(
        "SELECT count(*) FROM customers c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.slug = ?", undef, $slug))[0];
}

# ---- a flood of 200 signups: never more sessions than the budget ---------
add_tenant(slug => 'budget', nodes => [[1000, 0], [1000, 0]]);
my ($res, $max) = flood(200, 'budget', 'a', 60);
my @st = map { $_->[0] } @$res;
ok t_cmp(scalar(grep { $_ == 201 || $_ == 503 } @st), 200,
          'all 200 answered, 201 or 503 (' . tally(@st) . ')');
print "# sessions seen at most: $max (budget $BOUND)\n";
check $max >= 1 && $max <= $BOUND, "at most $BOUND PostgreSQL sessions ($max)";
my $n201 = grep { $_ == 201 } @st;
ok t_cmp(customers_of('budget'), $n201, 'a customer for each 201');
ok t_cmp(used_of('budget'), $n201, 'a slot for each 201');
ok t_cmp(scalar(grep { $_->[0] == 503 && !defined $_->[1] } @$res), 0,
         'every 503 has Retry-After');

# ---- the database stalls: a bounded wait, then 503 + Retry-After --------
add_tenant(slug => 'stall', nodes => [[1000, 0]]);
my $lk = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                      { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
$lk->begin_work;
# every signup of the tenant now waits for this lock while it holds its
# connection; the others wait at the gate for at most 1 s
$lk->do("SELECT 1 FROM nodes n JOIN tenants t ON t.id = n.tenant_id
         WHERE t.slug = 'stall' FOR UPDATE OF n");
my $released = 0;
my $t0 = time;
($res, $max) = flood(200, 'stall', 's', 90, sub {
    my ($answered) = @_;
    # all but the connection holders answered (or 30 s): let them go
    if (!$released && ($answered >= 200 - $BOUND || time - $t0 > 30)) {
        $lk->rollback;
        $released = 1;
    }
});
$lk->rollback unless $released;
@st = map { $_->[0] } @$res;
my $held = grep { $_ == 201 } @st;
my @busy = grep { $_->[0] == 503 } @$res;
ok t_cmp(scalar(grep { $_ == 201 || $_ == 503 } @st), 200,
         'stalled: all 200 answered, none hung (' . tally(@st) . ')');
check $held >= 1 && $held <= $BOUND,
      "only the requests holding a connection got through ($held)";
ok t_cmp(scalar(@busy), 200 - $held, 'the others: 503');
ok t_cmp(scalar(grep { !defined $_->[1] } @busy), 0, 'with Retry-After');
ok t_cmp(scalar(grep { $_->[2] !~ /"detail"/ } @busy), 0, 'and a JSON detail');
check $max <= $BOUND, "still at most $BOUND sessions ($max)";
ok t_cmp(customers_of('stall'), $held, 'nothing written for a 503');
ok t_cmp(used_of('stall'), $held, 'used = the 201s');

my $log = do { open my $f, '<', "$dir/error.log"; local $/; <$f> // '' };
ok $log =~ /HS00910: /;  # the operator is told why
ok t_cmp(join("\n", $log =~ /^.*(?:exit signal|Segmentation|\[(?:emerg|alert|crit)\]).*$/mg),
         '', 'no crash, nothing critical');
stop_server();
check wait_until_gone(), 'its sessions end with the server';

sub wait_until_gone {
    my $until = time + 15;
    while (time < $until) {
        return 1 if sessions() == 0;
        sleep 0.1;
    }
    return 0;
}
