#!/usr/bin/perl
# SPDX-License-Identifier: Apache-2.0
# tests/package/run_command.t - the run command: scripts/run.sh serves a
# tenant a user inserts into the database (HydraSignupTenants *), and
# scripts/stop.sh leaves nothing running that run.sh started. Run as root
# (run.sh is) from a copy of the tree:
#
#   HYDRA_SRC=<tree> prove tests/package/run_command.t
#
# run.sh runs in a scratch copy of HYDRA_SRC with its own state directory
# and free ports (httpd, PostgreSQL, SMTP sink), so it touches nothing of
# another run. HYDRA_KEEP=1 keeps the work directory.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);
use lib dirname(abs_path(__FILE__)) . '/lib';
use PackageTest qw(free_port port_busy tail_of slurp tenant_sql);

my $SRC = abs_path($ENV{HYDRA_SRC} // dirname(abs_path(__FILE__)) . '/../..');

if ($> != 0) {
    fail('tests/package/run_command.t runs as root (scripts/run.sh does)');
    done_testing();
    exit 1;
}

my $work = tempdir('/tmp/hydra-runcmd.XXXXXX', CLEANUP => 0);
chmod 0755, $work;    # PostgreSQL runs as postgres, httpd as www-data
my $log = "$work/run.log";

# processes whose command line names the work directory
sub ours {
    my @p;
    for my $f (glob '/proc/[0-9]*/cmdline') {
        open my $fh, '<', $f or next;
        local $/;
        my $c = <$fh> // '';
        next unless index($c, $work) >= 0;
        my ($pid) = $f =~ m{/proc/(\d+)/};
        next if $pid == $$;
        push @p, "$pid: " . join ' ', split /\0/, $c;
    }
    return @p;
}

# a signal (a time-out, ^C) still runs the END block's clean-up
$SIG{TERM} = $SIG{INT} = $SIG{HUP} = sub { exit 1 };

my $tree = "$work/src";
my $http = free_port();
my $pg = free_port($http);
my $smtp = free_port($http, $pg);
my %env = (HYDRA_STATE_DIR => "$work/state", HYDRA_HTTP_PORT => $http,
    HYDRA_PG_PORT => $pg, HYDRA_SMTP_PORT => $smtp);
my $env = join ' ', map { "$_=$env{$_}" } sort keys %env;

is(system('cp', '-a', "$SRC/.", $tree), 0, "copy of $SRC");
system('chmod', '-R', 'a+rX', $tree);    # the sink and the sender run as www-data
my $rc = system("cd '$tree' && env $env scripts/run.sh >>'$log' 2>&1") >> 8;
is($rc, 0, 'scripts/run.sh') or diag(tail_of($log, 30));

my $ua = HTTP::Tiny->new(timeout => 30);
my $base = "http://127.0.0.1:$http/v1/public/signup";
my $slug = 'added-' . $$;
my $dsn = "host=127.0.0.1 port=$pg dbname=hydra user=hydra password=hydra";
my $sql = tenant_sql(slug => $slug, name => 'Added Later',
    plan => ['solo', 'One site', '$3/mo']);
my $res = $ua->get("$base/plans/$slug");
is($res->{status}, 404, 'a tenant not in the database: 404');
is(system('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $dsn, '-c', $sql), 0,
    "a user inserts tenant $slug");
# each httpd process keeps a plans answer, the 404 of an unknown slug too,
# for HydraSignupPlansCacheTTL (5 s by default): served within that time
my $deadline = time + 20;
do {
    sleep 0.25;
    $res = $ua->get("$base/plans/$slug");
} until ($res->{status} == 200 || time > $deadline);
is($res->{status}, 200, "run.sh serves it within the plans cache's TTL: GET plans/$slug 200")
    or diag($res->{content});
my $plans = eval { decode_json($res->{content}) } // [];
is(ref $plans eq 'ARRAY' && $plans->[0] ? $plans->[0]{name} : undef, 'solo', 'its plan');
$res = $ua->get("$base/plans/demo");
is($res->{status}, 200, 'and the demo tenant: 200');
# the figures run.sh prints the address of
$res = $ua->get("$base/metrics");
like("$res->{status} " . ($res->{headers}{'content-type'} // ''),
     qr{^200 text/plain; version=0\.0\.4}, 'GET metrics: Prometheus text');
like($res->{content}, qr/^hydra_signup_requests_total\{endpoint="plans",code="200"\} [1-9]/m,
     'it counted the plans requests');
$res = $ua->get("$base/page/demo");
is($res->{status}, 200, 'the signup page of the demo tenant: 200');
like(slurp($log), qr{metrics: +\Q$base\E/metrics},
     'run.sh printed the metrics URL');

# the recommended shape leaves scoreboard slots for the children that
# finish after a graceful restart (README, "Sizing a host"), and a graceful
# restart keeps the server answering
my $conf = slurp("$work/state/httpd.conf");
my %mpm = map { $conf =~ /^$_\s+(\d+)/m ? ($_ => $1) : () }
          qw(ServerLimit MaxRequestWorkers ThreadsPerChild);
ok(keys %mpm == 3 && $mpm{ServerLimit} > $mpm{MaxRequestWorkers} / $mpm{ThreadsPerChild},
   'httpd.conf: ServerLimit above the serving children (' . join(', ', map { "$_ $mpm{$_}" } sort keys %mpm) . ')');
# httpd's children, by their parent's pid file
sub children {
    my ($parent) = slurp("$work/state/run/httpd.pid") =~ /(\d+)/ or return ();
    return grep { slurp("/proc/$_/stat") =~ /\) \S+ $parent / }
           map { m{/proc/(\d+)/stat} ? $1 : () } glob '/proc/[0-9]*/stat';
}
my %old = map { $_ => 1 } children();
is(system('apache2', '-f', "$work/state/httpd.conf", '-k', 'graceful'), 0, 'apache2 -k graceful');
# the new generation: "resuming normal operations" a second time, and a
# child that was not there before (the old children no longer accept)
my $errlog = "$work/state/logs/error_log";
$deadline = time + 20;
sleep 0.25 until ((() = slurp($errlog) =~ /AH00489:/g) >= 2
                  && grep { !$old{$_} } children()) || time > $deadline;
ok(scalar(grep { !$old{$_} } children()), 'the graceful restart started new children')
    or diag(tail_of($errlog, 20));
$res = $ua->get("$base/plans/demo");
is($res->{status}, 200, 'after the graceful restart: GET plans/demo 200');
my @before = ours();
ok(@before >= 4, 'run.sh started httpd, the sender, the sink, PostgreSQL') or diag(join "\n", @before);

$rc = system("cd '$tree' && env $env scripts/stop.sh >>'$log' 2>&1") >> 8;
is($rc, 0, 'scripts/stop.sh') or diag(tail_of($log, 20));
my @left = ours();
ok(!@left, 'nothing run.sh started is left when stop.sh returns') or diag(join "\n", @left);
my @open = grep { port_busy($_) } $http, $pg, $smtp;
ok(!@open, 'its ports are closed') or diag("still listening: @open");

END {
    if ($work && -d $work) {
        # a failed run must not leave the services behind
        if (ours()) {
            system("cd '$tree' && env $env scripts/stop.sh >>'$log' 2>&1");
            kill 'KILL', map { /^(\d+):/ ? $1 : () } ours();
        }
        if ($ENV{HYDRA_KEEP} || !Test::More->builder->is_passing) {
            diag("work directory kept: $work");
        } else {
            system('rm', '-rf', $work);
        }
    }
}

done_testing();
