# SPDX-License-Identifier: Apache-2.0
# Signup when the database fails: unreachable (503 JSON + log line, then
# recovery without restarting httpd), a statement failing inside the
# transaction and a failing COMMIT (503, nothing written, no mail).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use Time::HiRes qw(sleep);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant get_json spool_files signup_post
                 state_snapshot pg_stop pg_start log_since);

plan tests => 35, have_lwp;

my $db = dbh();
reset_db();
add_tenant(slug => 'acme', domain => 'sites.acme.test');
Apache::TestRequest::module('vhost_signup');
my $errlog = Apache::Test::vars('t_logs') . '/error_log';

sub nfiles { my @f = spool_files($_[0]); return scalar @f }
sub clear_spool { unlink spool_files($_) for qw(new tmp cur) }
sub errlog_since { log_since($errlog, $_[0]) }
sub body { get_json($_[0]) // {} }
my %ok = (company_name => 'Fault Co', tenant_slug => 'acme');

# ---- a statement fails inside the transaction ---------------------------
$db->do(q{CREATE OR REPLACE FUNCTION hs_test_fail() RETURNS trigger
          LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected by t/signup_faults.t'; END $$});
add_tenant(slug => 'faulty', nodes => [[10, 0]]);
# the slot is taken last, after the message was written to tmp/
$db->do(q{CREATE TRIGGER hs_test_fail_slot BEFORE UPDATE ON nodes FOR EACH ROW
          WHEN (NEW.hostname LIKE 'faulty-%') EXECUTE FUNCTION hs_test_fail()});
clear_spool();
my $before = state_snapshot();
my $size = -s $errlog;
my $res = signup_post({ %ok, email => 'slot@example.com', tenant_slug => 'faulty' });
ok t_cmp($res->code, 503, 'a failing statement: 503');
ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json}, 'JSON');
ok t_cmp(body($res)->{detail}, qr/\S/, 'detail');
ok t_cmp(scalar $res->header('Retry-After'), qr/^\d+$/, 'Retry-After');
ok t_cmp(state_snapshot(), $before, 'rolled back, the tmp/ message removed');
ok t_cmp(errlog_since($size), qr/HS00\d{3}.*injected/, 'the operator sees the error');
$db->do('DROP TRIGGER hs_test_fail_slot ON nodes');

# the code insert fails (before the message is written)
$db->do(q{CREATE TRIGGER hs_test_fail_code BEFORE INSERT ON hydra_signup_codes
          FOR EACH ROW EXECUTE FUNCTION hs_test_fail()});
$res = signup_post({ %ok, email => 'code@example.com' });
ok t_cmp($res->code, 503, 'failing code insert: 503');
ok t_cmp(state_snapshot(), $before, 'nothing written');
$db->do('DROP TRIGGER hs_test_fail_code ON hydra_signup_codes');

# COMMIT fails (a deferred constraint trigger): no row, no mail
$db->do(q{CREATE CONSTRAINT TRIGGER hs_test_fail_commit AFTER INSERT ON customers
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
          WHEN (NEW.company_name = 'Fail At Commit') EXECUTE FUNCTION hs_test_fail()});
$size = -s $errlog;
$res = signup_post({ %ok, company_name => 'Fail At Commit', email => 'commit@example.com' });
ok t_cmp($res->code, 503, 'failing COMMIT: 503');
ok t_cmp(state_snapshot(), $before, 'nothing committed, no message in new/ or tmp/');
ok t_cmp(errlog_since($size), qr/HS002(?:07|11).*COMMIT/, 'COMMIT failure logged');
$res = signup_post({ %ok, email => 'after@example.com' });
ok t_cmp($res->code, 201, 'the next signup on the same connections works');
$db->do('DROP TRIGGER hs_test_fail_commit ON customers');
$db->do('DROP FUNCTION hs_test_fail()');

# ---- the database goes away -------------------------------------------
my $stopped = 0;
END { pg_start() if $stopped } # whatever happens, leave it running

clear_spool();
my ($n_before) = $db->selectrow_array('SELECT count(*) FROM customers');
$size = -s $errlog;
$stopped = 1;
ok pg_stop();
my @down;
for my $i (1 .. 3) {
    for my $m ('vhost_signup', 'vhost_signup_fill') {
        Apache::TestRequest::module($m);
        push @down, signup_post({ %ok, email => "down$i\@example.com" });
    }
}
Apache::TestRequest::module('vhost_signup');
ok t_cmp(join(' ', map { $_->code } @down), '503 503 503 503 503 503',
         'database down: 503 every time');
ok t_cmp(scalar(grep { ($_->header('Content-Type') // '') =~ m{^application/json} } @down),
         6, 'JSON');
ok t_cmp(scalar(grep { (body($_)->{detail} // '') =~ /unavailable/i } @down), 6,
         'detail says unavailable');
ok t_cmp(scalar(grep { ($_->header('Retry-After') // '') =~ /^\d+$/ } @down), 6,
         'Retry-After');
ok t_cmp(nfiles('new') + nfiles('tmp'), 0, 'no message');
my $tail = errlog_since($size);
ok t_cmp($tail, qr/HS00\d{3}/, 'a numbered log line');
ok $tail !~ /\b\d{6}\b.*code|code.*\b\d{6}\b/; # no code in the log

ok pg_start();
$stopped = 0;
# pooled connections notice the restart on their first use: bounded retries
my @after;
for my $i (1 .. 10) {
    my $r = signup_post({ %ok, email => "back$i\@example.com" });
    push @after, $r->code;
    last if $r->code == 201;
    sleep 0.5;
}
ok t_cmp($after[-1], 201, 'back without restarting httpd') or print "# @after\n";
ok t_cmp(scalar @after <= 10, 1, 'within ten tries');
# every pooled connection of every vhost recovers
my @codes;
for my $i (1 .. 8) {
    for my $m ('vhost_signup', 'vhost_signup_fill', 'default') {
        Apache::TestRequest::module($m);
        push @codes, signup_post({ %ok, email => "again$i.$m\@example.com" })->code;
    }
}
Apache::TestRequest::module('vhost_signup');
ok t_cmp(join(' ', grep { $_ != 201 } @codes), '', 'every later signup: 201');

$db = dbh();
my ($n_after) = $db->selectrow_array('SELECT count(*) FROM customers');
my $n201 = grep { $_ == 201 } @after, @codes;
ok t_cmp($n_after - $n_before, $n201, 'a row for each 201, none for a 503');
ok t_cmp(nfiles('new'), $n201, 'a message for each 201');
ok t_cmp(nfiles('tmp'), 0, 'nothing left in tmp/');
my ($bad) = $db->selectrow_array(
    "SELECT count(*) FROM nodes n JOIN tenants t ON t.id = n.tenant_id
     WHERE t.slug IN ('acme', 'faulty') AND n.used <>
     (SELECT count(*) FROM customers c WHERE c.node_id = n.id)");
ok t_cmp($bad, 0, 'used = customers on every node');
my ($codeless) = $db->selectrow_array(
    "SELECT count(*) FROM customers c WHERE NOT EXISTS
     (SELECT 1 FROM hydra_signup_codes k WHERE k.customer_id = c.id)");
ok t_cmp($codeless, 0, 'every customer has its code');

# ---- killed rather than stopped: the same -------------------------------
{
    my $lib = "$ENV{HYDRA_SRC}/scripts/lib/pg.sh";
    $stopped = 1;
    ok system('bash', '-c', ". '$lib'; hs_pg_kill '$ENV{HYDRA_PG_DATA}' >/dev/null 2>&1") == 0;
    $res = signup_post({ %ok, email => 'killed@example.com' });
    ok t_cmp($res->code, 503, 'killed database: 503');
    ok t_cmp(body($res)->{detail}, qr/unavailable/i, 'JSON detail');
    ok pg_start();
    $stopped = 0;
    my $code = 0;
    for my $i (1 .. 10) {
        $code = signup_post({ %ok, email => "revived$i\@example.com" })->code;
        last if $code == 201;
        sleep 0.5;
    }
    ok t_cmp($code, 201, 'back after a crash');
    $db = dbh();
    my ($k) = $db->selectrow_array(
        "SELECT count(*) FROM customers WHERE email = 'killed\@example.com'");
    ok t_cmp($k, 0, 'nothing from the failed request');
}
