# SPDX-License-Identifier: Apache-2.0
# The database goes away and comes back: 503 JSON with a log line while it
# is down, 200 again afterwards without restarting httpd.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET);
use Time::HiRes qw(sleep);
use lib 't/lib';
use HydraTest qw(get_json log_since);

plan tests => 9, have_lwp;

my $pg = ". '$ENV{HYDRA_SRC}/scripts/lib/pg.sh'";
sub pg { system('bash', '-c', "$pg; $_[0] '$ENV{HYDRA_PG_DATA}' >/dev/null 2>&1") == 0 }

my $url = '/v1/public/signup/plans/demo';
my $errlog = Apache::Test::vars('t_logs') . '/error_log';
my $log_size = -s $errlog;

ok t_cmp(GET($url)->code, 200, 'plans served while the database is up');

ok pg('hs_pg_stop');   # PostgreSQL stopped
my $res = GET $url;
ok t_cmp($res->code, 503, 'database down: 503');
ok t_cmp(get_json($res)->{detail}, qr/unavailable/i, 'JSON detail');
ok defined $res->header('Retry-After');

my $tail = log_since($errlog, $log_size);
ok $tail =~ /HS002\d\d: /;   # the operator gets a numbered log line

ok pg('hs_pg_restart');   # PostgreSQL started again
# pooled connections notice the restart on first use; a few tries at most
my $code = 0;
for (1 .. 20) {
    $code = GET($url)->code;
    last if $code == 200;
    sleep 0.25;
}
ok t_cmp($code, 200, 'served again without restarting httpd');
# every pooled connection works again, not just the first one
my @codes = map { GET($url)->code } 1 .. 30;
ok t_cmp(join(',', grep { $_ != 200 } @codes), '', 'all later requests 200');
END { pg('hs_pg_restart') unless $code == 200 }
