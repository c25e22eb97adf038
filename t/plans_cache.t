# SPDX-License-Identifier: Apache-2.0
# GET plans from the per-process cache (HydraSignupPlansCacheTTL): a
# tenant's change shows up once the entry's lifetime is over; until then,
# and for unknown slugs too, the answer comes from the cache - a flood of
# GETs with PostgreSQL stopped is still answered.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use File::Temp qw(tempdir);
use IO::Select ();
use IO::Socket::INET ();
use LWP::UserAgent ();
use Scalar::Util qw(refaddr);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd dbh reset_db add_tenant json wait_port free_port
                 wait_until pg_stop pg_start tally check);

plan tests => 17;

my $db = dbh();
reset_db();
my $dir = tempdir(CLEANUP => 1);

# one child process, so that one GET fills the cache every request sees
my $port = free_port();
my ($up, $out) = start_httpd(dir => $dir, port => $port,
    mpm => "ServerLimit 1\nStartServers 1\nThreadsPerChild 25\n"
         . "MaxRequestWorkers 25\nListenBacklog 511",
    dbd_params => ' connect_timeout=2', rate_limits => 0,
    # the flood below is 200 GETs from one client: over the default plans
    # limit (120 per minute) they would be answered 429, not from the cache
    server => "HydraSignupReapInterval Off\nHydraSignupRateLimit plans 100000 60",
    locations => <<'EOT');
<Location /v1/public/signup>
    SetHandler hydra-signup
    HydraSignupTenants *
    HydraSignupPlansCacheTTL 600
</Location>
<Location /short/v1/public/signup>
    SetHandler hydra-signup
    HydraSignupTenants *
    HydraSignupPlansCacheTTL 2
</Location>
EOT
ok $up or print "# httpd did not start: $out\n";
sub stop_server { stop_httpd($dir) }
my $pg_down = 0;
END { pg_start() if $pg_down; stop_server() }

my $ua = LWP::UserAgent->new(timeout => 30);
my $long = "http://127.0.0.1:$port/v1/public/signup/plans";
my $short = "http://127.0.0.1:$port/short/v1/public/signup/plans";
sub price {
    my ($res) = @_;
    return $res->code . ' ' . ($res->code == 200
        ? join(',', map { $_->{price} } @{ json()->decode($res->decoded_content) })
        : '');
}
sub set_price {
    dbh()->do("UPDATE plans SET price = ? WHERE tenant_id =
               (SELECT id FROM tenants WHERE slug = 'cachy')", undef, $_[0]);
}

add_tenant(slug => 'cachy', plans => [['basic', '$1/mo', ['a']]]);
my $res = $ua->get("$long/cachy");
ok t_cmp(price($res), '200 $1/mo', 'plans: 200');
my $etag = $res->header('ETag');
ok t_cmp($ua->get("$long/nosuch-cache")->code, 404, 'unknown slug: 404');

# ---- cached: a change is not seen before the lifetime is over -----------
set_price('$2/mo');
$res = $ua->get("$long/cachy");
ok t_cmp(price($res), '200 $1/mo', 'within its 600 s: the cached answer');
ok t_cmp(scalar $res->header('ETag'), $etag, 'with its ETag');
ok t_cmp($ua->get("$long/cachy", 'If-None-Match' => $etag)->code, 304,
         '304 from the cache');
add_tenant(slug => 'nosuch-cache', plans => [['late', '$9/mo', []]]);
ok t_cmp($ua->get("$long/nosuch-cache")->code, 404,
         'an unknown slug is cached too');

# ---- a short lifetime: the change shows up after it ---------------------
ok t_cmp(price($ua->get("$short/cachy")), '200 $2/mo',
         'another lifetime: its own entry');
set_price('$3/mo');
my $seen = '';
check wait_until(sub { ($seen = price($ua->get("$short/cachy"))) eq '200 $3/mo' }, 20),
      "the change shows up after 2 s ($seen)";
ok t_cmp(price($ua->get("$long/cachy")), '200 $1/mo',
         'the 600 s entry still answers the old plans');

# ---- a flood with PostgreSQL stopped: answered from the cache -----------
# (the short Location's plans for a slug never asked before need the
# database: they prove it is down)
$pg_down = pg_stop();
check $pg_down, 'PostgreSQL stopped';
ok t_cmp($ua->get("$long/never-asked")->code, 503,
         'an uncached slug needs the database: 503');

sub flood {
    my ($n, @paths) = @_;
    my (@socks, %buf);
    for my $i (0 .. $n - 1) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 10) or next;
        syswrite $s, "GET $paths[$i % @paths] HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n\r\n";
        push @socks, [$s, $paths[$i % @paths]];
        $buf{ refaddr $s } = '';
    }
    my $sel = IO::Select->new(map { $_->[0] } @socks);
    my $until = time + 60;
    while ($sel->count && time < $until) {
        for my $s ($sel->can_read(0.2)) {
            my $got = sysread $s, my $chunk, 65536;
            if ($got) { $buf{ refaddr $s } .= $chunk }
            else { $sel->remove($s); close $s }
        }
    }
    my @r;
    for my $p (@socks) {
        my $raw = $buf{ refaddr $p->[0] };
        my ($status) = $raw =~ m{^HTTP/1\.\d (\d{3})};
        my (undef, $body) = split /\r\n\r\n/, $raw, 2;
        push @r, [$p->[1], $status // 0, $body // ''];
    }
    return ($n - @socks, @r);
}
my ($lost, @r) = flood(200, '/v1/public/signup/plans/cachy',
                       '/v1/public/signup/plans/nosuch-cache');
ok t_cmp($lost, 0, '200 connections opened');
my @cachy = grep { $_->[0] =~ /cachy$/ } @r;
my @nosuch = grep { $_->[0] =~ /nosuch-cache$/ } @r;
ok t_cmp(tally(map { $_->[1] } @cachy), '200:100',
         'database down: the cached plans, 100 times');
ok t_cmp(scalar(grep { $_->[2] !~ /"\$1\/mo"/ } @cachy), 0, 'the cached body');
ok t_cmp(tally(map { $_->[1] } @nosuch), '404:100',
         'database down: the cached 404, 100 times');
check pg_start(), 'PostgreSQL started again';
$pg_down = 0;
