# SPDX-License-Identifier: Apache-2.0
# `apachectl graceful` (SIGUSR1 to the httpd parent) twice in the middle of
# a stream of signups from 8 parallel clients (issue 6, "Faults"): no
# request fails - every answer is 201 - nothing is lost, and the new
# generation still limits rates (its socache and mutex were made anew).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HydraTest qw(reset_db add_tenant post_json check httpd_pid
                 start_clients client_answers wait_clients wait_until tally
                 invariant_errors mail_errors log_since);

plan tests => 12, have_lwp;

reset_db();
my $tenant = add_tenant(slug => 'graceco', nodes => [[2000, 0], [2000, 0]]);
my $SIGNUP = '/v1/public/signup';
my $url = Apache::TestRequest::module2url('vhost_fault', { path => $SIGNUP });
my $errlog = Apache::Test::vars('t_logs') . '/error_log';
my $log_size = -s $errlog;
my $parent = httpd_pid();
my $stop = "$ENV{HYDRA_STATE}/fault-graceful.stop";
unlink $stop;
sub log_tail { log_since($errlog, $log_size) }
sub restarts { scalar(() = log_tail() =~ /AH00493: SIGUSR1 received/g) }
sub generation_up {    # the new generation serves: "resuming normal operations"
    my $n = shift;
    return scalar(() = log_tail() =~ /AH00489: .*resuming normal operations/g) >= $n;
}

my $h = start_clients(clients => 8, max => 100, url => $url, timeout => 20,
    stop => $stop,
    body => sub { return { company_name => "Grace $_[0] $_[1]",
                           email => "g$_[0]-$_[1]\@example.com",
                           tenant_slug => 'graceco' } });
my $t0 = time;
for my $round (1, 2) {
    wait_until(sub { client_answers($h) >= 60 * $round + 20 * ($round - 1) }, 30);
    kill 'USR1', $parent or die "kill USR1 $parent: $!";
    check(wait_until(sub { generation_up($round) }, 20),
          "graceful restart $round: the new generation is up");
}
# the stream goes on in the last generation for a while
my $n = client_answers($h);
wait_until(sub { client_answers($h) >= $n + 40 }, 30);
open my $sf, '>', $stop or die;
close $sf;
my @ans = wait_clients($h, 40);
unlink $stop;

ok t_cmp($h->{hung}, 0, 'no client hung');
ok t_cmp(restarts(), 2, 'two graceful restarts');
my @odd = grep { $_->{status} ne '201' } @ans;
ok t_cmp(tally(map { $_->{status} } @odd), '', 'every answer 201 (' . scalar(@ans) . ' requests)');
ok t_cmp(httpd_pid(), $parent, 'the same parent');

my @bad = invariant_errors($tenant);
ok t_cmp("@bad", '', 'slots, customers and codes consistent');
my ($mail_bad, $silent) = mail_errors($tenant, \@ans);
ok t_cmp("@$mail_bad", '', 'every 201 committed with its message; nothing in tmp/');
ok t_cmp($silent, 0, 'no committed signup without its answer');
check(log_tail() !~ /exit signal|Segmentation fault|AddressSanitizer/, 'no child process crashed');

# ---- the new generation: rate limits still work ----------------------------
Apache::TestRequest::module('vhost_limits');
my @st = map {
    post_json($SIGNUP, {}, 'X-Forwarded-For' => '198.18.0.1')->code
} 1 .. 4;
ok t_cmp("@st", '422 422 422 429', 'after the restarts: 3 admitted, the 4th 429');
ok t_cmp(post_json($SIGNUP, {}, 'X-Forwarded-For' => '198.18.0.2')->code, 422,
         'another client is not limited');
printf "# fault_graceful: %d requests in %.1f s (%s), 2 graceful restarts; lost: %s\n",
    scalar @ans, time - $t0, tally(map { $_->{status} } @ans),
    (@bad || @$mail_bad || $silent) ? 'see failures' : 'nothing';
