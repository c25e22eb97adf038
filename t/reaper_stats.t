# SPDX-License-Identifier: Apache-2.0
# The reaper analyzes the module's tables that more than doubled since
# their statistics were taken (sql/009_grown_stats.sql), with no request
# arriving: the module's long-lived sessions then plan their prepared
# statements again instead of scanning tables planned for when they were
# nearly empty. A table that grew less is left alone (to autovacuum).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use Time::HiRes qw(sleep);
use lib 't/lib';
use HydraTest qw(dbh reset_db wait_until check);

plan tests => 7;

my $db = dbh();
reset_db();
my $errlog = Apache::Test::vars('t_logs') . '/error_log';
my $log_start = -s $errlog // 0;
my $BOUND = 20; # seconds: far beyond the suite's 1 s reaper tick

my ($tenant) = $db->selectrow_array("SELECT id FROM tenants WHERE slug = 'demo'");

# autovacuum must not take the analyze this test waits for
$db->do("ALTER TABLE hydra_signup_mail_log SET (autovacuum_enabled = false)");
$db->do("ANALYZE hydra_signup_mail_log");

sub last_analyze {
    # a fresh statistics snapshot every time (each statement is its own
    # transaction here)
    my ($t) = dbh()->selectrow_array(
        "SELECT extract(epoch FROM last_analyze) FROM pg_stat_user_tables
          WHERE relid = 'hydra_signup_mail_log'::regclass");
    return $t // 0;
}
sub add_log_rows {
    my ($n, $tag) = @_;
    dbh()->do("INSERT INTO hydra_signup_mail_log (tenant_id, email_lower)
               SELECT ?, 'grow-' || ? || '-' || g || '\@stats.example'
                 FROM generate_series(1, ?) g", undef, $tenant, $tag, $n);
    # the live row count the reaper reads, now rather than within seconds
    dbh()->do("SELECT pg_stat_force_next_flush()");
}
sub log_since {
    open my $fh, '<', $errlog or return '';
    seek $fh, $log_start, 0;
    local $/;
    my $t = <$fh> // '';
    close $fh;
    return $t;
}

my $t0 = last_analyze();
check $t0 > 0, 'the mail log was analyzed by the test (the starting point)';

# ---- grown, but not past the threshold: left alone ------------------------
add_log_rows(500, 'a');
sleep 3.5; # three reaper runs
ok t_cmp(last_analyze(), $t0, '500 rows on a nearly empty table: not analyzed');
check log_since() !~ /HS00912: reaper analyzed [^\n]*hydra_signup_mail_log/,
      'and no HS00912 line for it';

# ---- more than doubled and past 1,000 rows: analyzed within seconds -------
add_log_rows(2000, 'b');
check wait_until(sub { last_analyze() > $t0 }, $BOUND),
      '2,500 rows: the reaper analyzed the mail log, no request arriving';
my ($line) = log_since() =~ /^(.*HS00912: reaper analyzed [^\n]*hydra_signup_mail_log[^\n]*)$/m;
check defined $line, 'an HS00912 line names the table';
check defined $line && $line =~ /: 2500 live rows, 0 when its statistics were taken/,
      'with its live and last analyzed row counts';

# ---- analyzed once: the next runs see fresh statistics --------------------
my $t1 = last_analyze();
sleep 3.5;
ok t_cmp(last_analyze(), $t1, 'not analyzed again while it does not double');

$db->do("ALTER TABLE hydra_signup_mail_log RESET (autovacuum_enabled)");
reset_db();
