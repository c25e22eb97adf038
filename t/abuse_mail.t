# SPDX-License-Identifier: Apache-2.0
# Mail bombing (issue 6, "Abuse protection"): nobody can use the signup
# endpoint to flood an inbox. On top of the resend interval, at most
# HydraSignupMailsPerHour codes go to one address; past that 429 and no
# further message in the spool - also for requests in parallel, from many
# client addresses, in any letter case, and for the "account exists" mail
# of a concealed active customer.
# vhost_limits (t/conf/hydra_abuse.conf.in): MailsPerHour 2, ResendInterval 3,
# ConcealExisting On; every request comes from another client address
# (X-Forwarded-For) so that the per-client rate limit stays out of the way.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json check
                 spool_recipients start_clients wait_clients tally
                 invariant_errors wait_resend);

plan tests => 25, have_lwp;

reset_db();
my $tenant = add_tenant(slug => 'mailbomb', nodes => [[1000, 0]]);
Apache::TestRequest::module('vhost_limits');
my $SIGNUP = '/v1/public/signup';
my $url = Apache::TestRequest::module2url('vhost_limits', { path => $SIGNUP });
my $ip = 0;

sub body { return { company_name => 'Inbox Co', email => $_[0], tenant_slug => 'mailbomb' } }
sub signup { post_json($SIGNUP, body($_[0]), 'X-Forwarded-For' => '198.51.100.' . (++$ip % 250 + 1)) }
sub mails { spool_recipients()->{ lc $_[0] } // 0 }
# the resend interval (3 s here) is over for the address's last code
sub interval_over { wait_resend($_[0], 3) or die "resend interval for $_[0] never over\n" }
sub burst {    # 16 parallel signups for one address, each from its own client
    my ($email, $round) = @_;
    my $h = start_clients(clients => 16, max => 1, url => $url,
        body => sub { body($email) },
        headers => sub { ('X-Forwarded-For' => "10.$round.$_[0].1") },
        timeout => 20, together => 1);
    my @a = wait_clients($h, 40);
    return map { $_->{status} } @a;
}

# ---- one address, one request after the other ------------------------------
my $res = signup('victim@example.com');
ok t_cmp($res->code, 201, 'first signup: 201');
my $id = (get_json($res) // {})->{customer_id};
ok t_cmp(mails('victim@example.com'), 1, 'one mail');
$res = signup('victim@example.com');
ok t_cmp($res->code, 429, 'again at once: 429 (resend interval)');
ok t_cmp(mails('victim@example.com'), 1, 'no second mail');
interval_over('victim@example.com');
$res = signup('victim@example.com');
ok t_cmp($res->code, 201, 'after the resend interval: 201');
ok t_cmp((get_json($res) // {})->{customer_id}, $id, 'the same customer');
ok t_cmp(mails('victim@example.com'), 2, 'second mail');
interval_over('victim@example.com');
$res = signup('victim@example.com');
my $ra = $res->header('Retry-After') // 0;
ok t_cmp($res->code, 429, 'third code within the hour: 429');
ok t_cmp((get_json($res) // {})->{detail}, qr/too many verification emails/i, 'JSON detail');
check($ra > 3000 && $ra <= 3600, "Retry-After $ra: until the hour is over");
ok t_cmp(mails('victim@example.com'), 2, 'no third mail');
$res = signup('VICTIM@Example.COM');
ok t_cmp($res->code, 429, 'another letter case: still 429');
ok t_cmp(mails('victim@example.com'), 2, 'still two mails');
ok t_cmp(signup('bystander@example.com')->code, 201, 'the budget is per address');

# ---- in parallel, from 16 client addresses at once ------------------------
ok t_cmp(signup('burst@example.com')->code, 201, 'burst: first signup');
interval_over('burst@example.com');
my @st = burst('burst@example.com', 1);
ok t_cmp(tally(@st), '201:1 429:15', '16 parallel after the interval: one new code');
interval_over('burst@example.com');
@st = burst('burst@example.com', 2);
ok t_cmp(tally(@st), '429:16', '16 parallel with the budget spent: all 429');
ok t_cmp(mails('burst@example.com'), 2, 'burst: two mails in all');

# ---- a concealed active customer: the "account exists" mail ----------------
ok t_cmp(signup('owner@example.com')->code, 201, 'owner signs up');
dbh()->do("UPDATE customers SET status = 'active', verified_at = now()
           WHERE email = ?", undef, 'owner@example.com');
interval_over('owner@example.com');
@st = burst('owner@example.com', 3);
ok t_cmp(tally(@st), '201:1 429:15',
         'concealed: 16 parallel after the interval: one 201, as for a pending address');
ok t_cmp(mails('owner@example.com'), 2,
         '16 parallel for an active address: one "account exists" mail');
interval_over('owner@example.com');
@st = burst('owner@example.com', 4);
ok t_cmp(tally(@st), '429:16', 'concealed, budget spent: all 429, as for a pending address');
ok t_cmp(mails('owner@example.com'), 2, 'budget spent: no further mail');
my ($logged) = dbh()->selectrow_array(
    "SELECT count(*) FROM hydra_signup_mail_log WHERE email_lower = ?", undef, 'owner@example.com');
ok t_cmp($logged, 2, 'the mail log counts what was mailed');

my @bad = invariant_errors($tenant);
ok t_cmp("@bad", '', 'slots and codes consistent');
my $total = 0;
$total += $_ for values %{ spool_recipients() };
printf "# abuse_mail: %d messages in the spool for %d addresses\n", $total,
    scalar keys %{ spool_recipients() };
