# Metrics (issue 13; CONTRACT section 1 "Beyond the seed", section 6):
# <location>/metrics in Prometheus text format 0.0.4 with HydraSignupMetrics
# On, 404 without it; counters shared by every child process, moved by
# exactly what a scripted sequence of requests does; the text parses with
# prometheus_client's exposition parser; the same figures in mod_status.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET);
use File::Temp ();
use Time::HiRes qw(sleep);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json check start_clients
                 wait_clients tally httpd_pid log_since wait_until);

plan tests => 27, have_lwp;

my $B = '/v1/public/signup';
reset_db();
add_tenant(slug => 'metco', nodes => [[1000, 0]]);
add_tenant(slug => 'fullco', nodes => [[1, 1]]);
Apache::TestRequest::module('vhost_metrics');
my $url = Apache::TestRequest::module2url('vhost_metrics', { path => $B });

# name{labels} => value of every sample
sub scrape {
    my $res = GET("$B/metrics");
    die 'metrics: ' . $res->code unless $res->code == 200;
    my %v;
    for (split /\n/, $res->content) {
        next if /^#/ || !/\S/;
        my ($k, $val) = /^(\S+) (\S+)$/ or die "bad sample line: $_";
        $v{$k} = $val;
    }
    return (\%v, $res);
}
sub delta {
    my ($a, $b, $k) = @_;
    return ($b->{$k} // 0) - ($a->{$k} // 0);
}
sub req { qq(hydra_signup_requests_total{endpoint="$_[0]",code="$_[1]"}) }
# the requests counted in a scrape, the scrapes themselves left out
sub counted {
    my $v = shift;
    my $t = 0;
    for (grep { /^hydra_signup_requests_total\{/ && !/endpoint="metrics"/ } keys %$v) {
        $t += $v->{$_};
    }
    return $t;
}
# A request is counted in log_transaction, after its answer has gone out,
# so a scrape on another connection can come before the last request's
# count: scrape until $n more requests than in $from are counted, for at
# most 5 s. More than $n is not waited for; the exact checks below then
# fail on it.
sub scrape_settled {
    my ($from, $n) = @_;
    my $want = counted($from) + $n;
    my $v;
    wait_until(sub { ($v) = scrape(); counted($v) >= $want }, 5);
    return $v;
}
sub cnt { my ($n, $l) = @_; $l ? "hydra_signup_${n}_total{$l}" : "hydra_signup_${n}_total" }

# ---- the answer itself ------------------------------------------------------
my ($v0, $res) = scrape();
ok t_cmp(scalar $res->header('Content-Type'), qr{^text/plain; version=0\.0\.4},
         'Prometheus text format 0.0.4');
ok t_cmp(scalar $res->header('Cache-Control'), 'no-store', 'not cached');
my $tmp = File::Temp->new;
print $tmp $res->content;
close $tmp;
my $parsed = `/usr/bin/python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
print(len(fams), sum(len(f.samples) for f in fams), " ".join(sorted(f.type for f in fams)))
' $tmp 2>&1`;
ok t_cmp($?, 0, 'prometheus_client parses it') or print "# $parsed";
check($parsed =~ /^(\d+) (\d+) .*\bcounter\b.*\bhistogram\b/ && $1 >= 8,
      "families and samples: $parsed");
Apache::TestRequest::module('default');
ok t_cmp(GET("$B/metrics")->code, 404,
         'without HydraSignupMetrics On: 404');
Apache::TestRequest::module('vhost_metrics');

# ---- more than one child process ------------------------------------------------
# load first, so that the MPM runs more than one child
my @children = HydraTest::warm_children(url => $url, tag => 'metrics');
check(@children >= 2, 'httpd runs ' . scalar(@children) . ' child processes');

# ---- a scripted sequence ------------------------------------------------------
my $log = Apache::Test::vars('t_logs') . '/metrics_access_log';
my $log_from = -s $log // 0;
# the baseline: once the warm-up's last requests are counted too (two
# scrapes 0.2 s apart that count the same)
my ($v1) = scrape();
wait_until(sub {
    sleep 0.2;
    my ($v) = scrape();
    my $same = counted($v) == counted($v1);
    $v1 = $v;
    $same;
}, 10);
my @plans = map { GET("$B/plans/metco")->code } 1 .. 5;
my @nope = map { GET("$B/plans/nosuchco")->code } 1 .. 3;
# 24 signups from 12 parallel clients: every child takes its share
my $h = start_clients(clients => 12, max => 2, url => $url, together => 1,
    body => sub { { company_name => "Met $_[0]-$_[1]", email => "m$_[0]-$_[1]\@example.com",
                    tenant_slug => 'metco' } }, timeout => 20);
my @par = map { $_->{status} } wait_clients($h, 40);
my @more = (
    post_json($B, { company_name => 'Met 1-1', email => 'm1-1@example.com',
                    tenant_slug => 'metco' })->code,                     # 429 resend
    post_json($B, { company_name => 'Full', email => 'f@example.com',
                    tenant_slug => 'fullco' })->code,                    # 503
    post_json($B, { email => 'x' })->code,                               # 422
    post_json("$B/verify", { code => '000000', email => 'm2-2@example.com',
                             tenant_slug => 'metco' })->code,            # 400
    GET("$B/nothing-here")->code,                                        # 404
    GET($B)->code,                                                       # 405
);
# 5 plans, 3 unknown plans, 24 signups, 6 others
my $v2 = scrape_settled($v1, 5 + 3 + 24 + 6);
ok t_cmp("@plans | @nope", '200 200 200 200 200 | 404 404 404', 'plans answers');
ok t_cmp(tally(@par), '201:24', '24 parallel signups: 201');
ok t_cmp("@more", '429 503 422 400 404 405', 'the other answers');

ok t_cmp(delta($v1, $v2, req('plans', 200)), 5, 'requests: plans 200 +5');
ok t_cmp(delta($v1, $v2, req('plans', 404)), 3, 'requests: plans 404 +3');
ok t_cmp(delta($v1, $v2, req('signup', 201)), 24, 'requests: signup 201 +24');
ok t_cmp(join(' ', map { delta($v1, $v2, req('signup', $_)) } 429, 503, 422, 405),
         '1 1 1 1', 'requests: signup 429, 503, 422, 405 +1 each');
ok t_cmp(delta($v1, $v2, req('verify', 400)), 1, 'requests: verify 400 +1');
ok t_cmp(delta($v1, $v2, req('other', 404)), 1, 'requests: other 404 +1');
my $hist = 'hydra_signup_request_duration_seconds';
ok t_cmp(delta($v1, $v2, qq(${hist}_count{endpoint="signup"})), 28,
         'latency histogram: 28 signups counted');
ok t_cmp($v2->{qq(${hist}_bucket{endpoint="signup",le="+Inf"})},
         $v2->{qq(${hist}_count{endpoint="signup"})}, 'the +Inf bucket is the count');
my @b = map { $v2->{qq(${hist}_bucket{endpoint="plans",le="$_"})} }
        qw(0.001 0.01 0.1 1 10 +Inf);
check(!grep({ !defined } @b) && join(',', @b) eq join(',', sort { $a <=> $b } @b),
      "buckets are cumulative (@b)");
ok t_cmp(delta($v1, $v2, cnt('placements', 'outcome="placed"')), 24, 'placements: placed +24');
ok t_cmp(delta($v1, $v2, cnt('placements', 'outcome="no_capacity"')), 1, 'placements: no_capacity +1');
ok t_cmp(delta($v1, $v2, cnt('placements', 'outcome="error"')), 0, 'placements: error +0');
ok t_cmp(delta($v1, $v2, cnt('mails_spooled')), 24, 'mails spooled +24');
ok t_cmp(delta($v1, $v2, cnt('spool_failures')) + delta($v1, $v2, cnt('db_errors')), 0,
         'no spool failure, no database error');
ok t_cmp(delta($v1, $v2, cnt('ratelimit_refused', 'kind="resend"')), 1, 'refused: resend +1');

# the answers came from several children (the access log's %P)
my %pids;
for (split /\n/, log_since($log, $log_from)) {
    my ($pid, $m, $u, $st) = split ' ';
    $pids{$pid}++ if $m eq 'POST' && $u eq $B && $st eq '201';
}
check(keys %pids >= 2, 'the 201s were answered by ' . scalar(keys %pids) . ' processes');

# ---- mod_status shows the same figures ----------------------------------------
my ($v3) = scrape();
my $st = GET('/server-status?auto');
my $key = req('plans', 200);
my ($in_status) = $st->content =~ /^HydraSignup \Q$key\E: (\d+)$/m;
ok t_cmp($in_status // 'missing', $v3->{$key}, 'server-status?auto: the same plans 200 count');
my $html = GET('/server-status')->content;
ok t_cmp($html, qr{<h2>mod_hydra_signup</h2>.*hydra_signup_requests_total}s,
         'server-status: a section of its own');
