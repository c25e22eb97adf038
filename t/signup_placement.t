# SPDX-License-Identifier: Apache-2.0
# Placement under locks (issue 11): a signup takes a node with room that no
# other transaction holds instead of queueing behind the one that does;
# when every node with room is held it waits (no false 503) and is placed
# once one is free; a tenant without room gets 503 with nothing written;
# the tenant's mail count (HydraSignupTenantMailsPerHour) is kept per
# minute and session, and counts every code.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use DBI ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant start_clients wait_clients client_answers
                 wait_until signup_post state_snapshot check);

plan tests => 18, have_lwp;

my $db = dbh();
reset_db();
Apache::TestRequest::module('vhost_signup');
my $url = 'http://' . Apache::TestRequest::hostport() . '/v1/public/signup';

my $tid = add_tenant(slug => 'placeco', nodes => [[100, 0], [100, 0]]);
my @nodes = @{ $db->selectcol_arrayref(
    "SELECT id FROM nodes WHERE tenant_id = ? ORDER BY id", undef, $tid) };

# a second session that holds node rows as another signup would
my $other = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                         { RaiseError => 1, AutoCommit => 0, PrintError => 0 });
sub hold { $other->do("SELECT 1 FROM nodes WHERE id = ANY(?) FOR UPDATE", undef, [@_]) }

sub one_signup {
    my ($email) = @_;
    return start_clients(clients => 1, max => 1, url => $url, timeout => 30,
        body => sub { { company_name => 'Place Co', email => $email,
                        tenant_slug => 'placeco' } });
}
sub node_of {
    my ($email) = @_;
    my ($n) = $db->selectrow_array(
        "SELECT node_id FROM customers WHERE email = ?", undef, $email);
    return $n // 'none';
}
# is a session of the module waiting for a row lock?
sub module_waits {
    my ($n) = $db->selectrow_array(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
         AND pid <> pg_backend_pid() AND pid <> ?", undef, $other->{pg_pid});
    return $n;
}

# ---- the least loaded node is held: the other one is taken at once --------
# spread placement takes the first of two empty nodes (by id) when free
hold($nodes[0]);
my $h = one_signup('skip@example.com');
# answered while the row is still held: the signup did not queue behind it
my @a = wait_clients($h, 25);
ok t_cmp(join(',', map { $_->{status} } @a), '201',
         'node 1 held by another transaction: 201 while it is held');
ok t_cmp(node_of('skip@example.com'), $nodes[1], 'placed on node 2, the free one');
ok t_cmp(module_waits(), 0, 'no session of the module waits for a lock');
$other->rollback;

# ---- every node with room is held: the signup waits, then is placed --------
hold(@nodes);
$h = one_signup('wait@example.com');
check(wait_until(sub { module_waits() >= 1 }, 20),
      'with both nodes held the signup waits for a row lock');
my @early = client_answers($h);
ok t_cmp(scalar(@early), 0, 'and has no answer while they are held');
$other->rollback;    # the holder ends
@a = wait_clients($h, 25);
ok t_cmp(join(',', map { $_->{status} } @a), '201', 'then it gets 201, not a false 503');
check(node_of('wait@example.com') =~ /^(?:\Q$nodes[0]\E|\Q$nodes[1]\E)$/,
      'and a slot on one of the nodes');

# ---- used equals the customers holding a slot ---------------------------------
my $bad = $db->selectrow_array(
    "SELECT count(*) FROM nodes n WHERE tenant_id = ? AND used <>
     (SELECT count(*) FROM customers c WHERE c.node_id = n.id)", undef, $tid);
ok t_cmp($bad, 0, 'every node: used = customers on it');

# ---- no room: 503, nothing written --------------------------------------------
my $full = add_tenant(slug => 'fullplace', nodes => [[1, 1], [2, 2]]);
my $before = state_snapshot();
my ($mails_before) = $db->selectrow_array(
    "SELECT coalesce(sum(n), 0) FROM hydra_signup_tenant_mails WHERE tenant_id = ?",
    undef, $full);
my $res = signup_post({ company_name => 'Full Place', email => 'full@example.com',
                        tenant_slug => 'fullplace' });
ok t_cmp($res->code, 503, 'every node full: 503');
ok t_cmp($res->header('Retry-After') // '', qr/^\d+$/, 'with Retry-After');
ok t_cmp(state_snapshot(), $before, 'no customer, code, mail log row or message');
my ($mails_after) = $db->selectrow_array(
    "SELECT coalesce(sum(n), 0) FROM hydra_signup_tenant_mails WHERE tenant_id = ?",
    undef, $full);
ok t_cmp($mails_after, $mails_before, 'and the tenant mail count unchanged');

# ---- the tenant's mail count -----------------------------------------------------
$h = start_clients(clients => 4, max => 3, url => $url, together => 1, timeout => 30,
    body => sub { { company_name => "Count $_[0]", email => "count$_[0]-$_[1]\@example.com",
                    tenant_slug => 'placeco' } });
@a = wait_clients($h, 60);
ok t_cmp(join(',', sort map { $_->{status} } @a), join(',', ('201') x 12),
         '12 more signups: 201');
my ($sum, $rows) = $db->selectrow_array(
    "SELECT sum(n), count(*) FROM hydra_signup_tenant_mails WHERE tenant_id = ?",
    undef, $tid);
ok t_cmp($sum, 14, 'the tenant mail count is 14 (every code mailed)');
my ($logged) = $db->selectrow_array(
    "SELECT count(*) FROM hydra_signup_mail_log WHERE tenant_id = ?", undef, $tid);
ok t_cmp($logged, 14, 'as the per-address log says');
check($rows >= 1 && $rows <= 14, "kept in $rows row(s) of minute and session");

# ---- a new customer's row is written once, with its slot --------------------
# (sql/007_new_signup.sql: an insert and then an update of node_id wrote
# the row and all its index entries twice). The statement the module sends,
# in a transaction of our own, whose own table counters are exact at once.
$db->begin_work;
my ($node) = $db->selectrow_array(
    "SELECT hydra_signup_new_customer(gen_random_uuid(), ?, 'Once Co',
     'once\@example.com', 'starter', 'https://once-co.example.net', 'ab', 900,
     'once\@example.com', false)", undef, $tid);
my ($ins, $upd) = $db->selectrow_array(
    "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables
     WHERE relname = 'customers'");
my ($on) = $db->selectrow_array(
    "SELECT node_id FROM customers WHERE email = 'once\@example.com'");
$db->rollback;
ok t_cmp("$ins inserted, $upd updated", '1 inserted, 0 updated',
         'a new customer row is written once (no update for its slot)');
ok t_cmp($on // 'none', $node, 'holding the slot the statement took');

$other->disconnect;
