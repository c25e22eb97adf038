# SPDX-License-Identifier: Apache-2.0
# The mail spool fails (issue 6, "Faults"; DESIGN.md failure matrix):
#  - its file system is full (a 256 KiB tmpfs that scripts/test.sh mounts;
#    skipped where mount is not permitted): 503, nothing committed (no
#    customer row, no slot taken, no message, nothing left in tmp/); works
#    again once space is back;
#  - tmp/ is read-only: the same;
#  - new/ is read-only (the rename after COMMIT fails): 201, the signup
#    exists and the operator is told (HS00501); a re-signup mails a code.
# vhost_smallspool (t/conf/hydra_abuse.conf.in), HydraSignupResendInterval 1.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok skip have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use Errno qw(ENOSPC);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json check
                 spool_recipients invariant_errors wait_resend log_since);

plan tests => 28, have_lwp;

my $spool = "$ENV{HYDRA_STATE}/spool-small";
my $mounted = -d $spool && (stat $spool)[0] != (stat "$spool/..")[0];
my $filler = "$spool/filler";
END {
    unlink $filler;
    chmod 0770, "$spool/tmp", "$spool/new";
}
reset_db();
unlink glob "$spool/$_/*" for qw(new tmp cur);
my $tenant = add_tenant(slug => 'spoolco', nodes => [[100, 0]]);
Apache::TestRequest::module('vhost_smallspool');
my $errlog = Apache::Test::vars('t_logs') . '/error_log';

sub signup {
    post_json('/v1/public/signup', { company_name => 'Spool Co', email => $_[0],
                                     tenant_slug => 'spoolco' });
}
sub state {    # customers, slots taken, messages in new/, files in tmp/
    my ($c) = dbh()->selectrow_array(
        "SELECT count(*) FROM customers WHERE tenant_id = ?", undef, $tenant);
    my ($u) = dbh()->selectrow_array(
        "SELECT sum(used) FROM nodes WHERE tenant_id = ?", undef, $tenant);
    my @new = glob "$spool/new/*";
    my @tmp = glob "$spool/tmp/*";
    return "customers=$c used=$u new=" . scalar(@new) . ' tmp=' . scalar(@tmp);
}
sub has { my ($email) = @_; my ($n) = dbh()->selectrow_array(
    "SELECT count(*) FROM customers WHERE email = ?", undef, $email); $n }
sub log_from { log_since($errlog, shift) }
sub is_503 {
    my ($res, $name) = @_;
    my $d = get_json($res) // {};
    check($res->code == 503 && ($d->{detail} // '') =~ /unavailable/i
          && defined $res->header('Retry-After'),
          "$name: 503, JSON detail, Retry-After");
}

ok t_cmp(signup('first@example.com')->code, 201, 'the small spool works');
my $base = state();
ok t_cmp($base, 'customers=1 used=1 new=1 tmp=0', 'one signup, one message');

# ---- file system full ------------------------------------------------------
if ($mounted) {
    # fill it up: write until ENOSPC
    open my $fh, '>:raw', $filler or die "cannot create $filler: $!";
    my $chunk = 'x' x 4096;
    my $full = 0;
    for (1 .. 1000) {
        my $w = syswrite $fh, $chunk;
        if (!defined $w || $w < length $chunk) { $full = !defined $w && $! == ENOSPC; last }
    }
    close $fh;
    check($full, 'the spool file system is full (ENOSPC)');
    my $size = -s $errlog;
    my $res = signup('full@example.com');
    is_503($res, 'spool full');
    ok t_cmp(has('full@example.com'), 0, 'no customer row');
    ok t_cmp(state(), $base, 'no slot taken, no message, nothing left in tmp/');
    is_503(signup('full2@example.com'), 'again');
    check(log_from($size) =~ /HS00301: signup aborted: writing to the spool failed: .*No space left/,
          'the operator is told why (HS00301, No space left on device)');
    my @ie = invariant_errors($tenant);
    ok t_cmp("@ie", '', 'invariants hold');
    unlink $filler;
    ok t_cmp(signup('full@example.com')->code, 201, 'space is back: 201');
    ok t_cmp(spool_recipients($spool)->{'full@example.com'}, 1, 'with its message');
    ok t_cmp(has('full2@example.com'), 0, 'the refused one stays refused');
    $base = state();
}
else {
    skip("no tmpfs for $spool (mount not permitted)", 0) for 1 .. 10;
}

# ---- tmp/ read-only --------------------------------------------------------
chmod 0555, "$spool/tmp" or die "chmod: $!";
my $size = -s $errlog;
is_503(signup('ro@example.com'), 'tmp/ read-only');
ok t_cmp(has('ro@example.com'), 0, 'no customer row');
ok t_cmp(state(), $base, 'no slot taken, no message');
check(log_from($size) =~ /HS00301: .*Permission denied/, 'logged (HS00301, Permission denied)');
chmod 0770, "$spool/tmp" or die "chmod: $!";
ok t_cmp(signup('ro@example.com')->code, 201, 'writable again: 201');
ok t_cmp(spool_recipients($spool)->{'ro@example.com'}, 1, 'with its message');
my @bad = invariant_errors($tenant);
ok t_cmp("@bad", '', 'invariants hold');

# ---- new/ read-only: the rename after COMMIT fails -------------------------
chmod 0555, "$spool/new" or die "chmod: $!";
$size = -s $errlog;
my $res = signup('late@example.com');
ok t_cmp($res->code, 201, 'new/ read-only: 201 (the signup committed)');
my $id = (get_json($res) // {})->{customer_id} // '';
ok t_cmp(has('late@example.com'), 1, 'the customer exists');
check(log_from($size) =~ /HS00501: committed signup \Q$id\E, but its mail could not be moved/,
      'the operator is told (HS00501)');
ok t_cmp(spool_recipients($spool)->{'late@example.com'} // 0, 0, 'no message published');
chmod 0770, "$spool/new" or die "chmod: $!";
# the resend interval (1 s on this vhost) is over, by the database's clock
wait_resend('late@example.com', 1) or die "the resend interval never ended\n";
$res = signup('late@example.com');
ok t_cmp($res->code, 201, 're-signup: 201');
ok t_cmp((get_json($res) // {})->{customer_id}, $id, 'the same customer');
ok t_cmp(spool_recipients($spool)->{'late@example.com'}, 1, 'a fresh code is mailed');
@bad = invariant_errors($tenant);
ok t_cmp("@bad", '', 'invariants hold');
# the unpublished message of the failed rename stays in tmp/ (maildir(5):
# the sender never reads tmp/; stale tmp/ files are garbage)
ok t_cmp(scalar(() = glob "$spool/tmp/*"), 1, 'one stale file in tmp/, nothing else');
printf "# fault_spool: tmpfs %s; %s\n", $mounted ? 'mounted' : 'not mounted', state();
