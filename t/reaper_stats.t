# SPDX-License-Identifier: Apache-2.0
# The reaper analyzes the module's tables that more than doubled since
# their statistics were taken (sql/009_grown_stats.sql), with no request
# arriving: the module's long-lived sessions then plan their prepared
# statements again instead of scanning tables planned for when they were
# nearly empty. A table that grew less is left alone (to autovacuum); one
# server at a time does it, and only for tables its role owns.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use DBI ();
use Time::HiRes qw(sleep);
use lib 't/lib';
use HydraTest qw(dbh reset_db wait_until check log_since);

plan tests => 11;

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
sub new_log { log_since($errlog, $log_start) }

my $t0 = last_analyze();
check $t0 > 0, 'the mail log was analyzed by the test (the starting point)';

# ---- grown, but not past the threshold: left alone ------------------------
add_log_rows(500, 'a');
sleep 3.5; # three reaper runs
ok t_cmp(last_analyze(), $t0, '500 rows on a nearly empty table: not analyzed');
check new_log() !~ /HS00912: reaper analyzed [^\n]*hydra_signup_mail_log/,
      'and no HS00912 line for it';

# ---- more than doubled and past 1,000 rows: analyzed within seconds -------
add_log_rows(2000, 'b');
# last_analyze moves when ANALYZE ends, before the reaper's transaction
# commits and it logs HS00912: wait for both
my $analyzed = qr/^(.*HS00912: reaper analyzed [^\n]*hydra_signup_mail_log[^\n]*)$/m;
check wait_until(sub { last_analyze() > $t0 && new_log() =~ $analyzed }, $BOUND),
      '2,500 rows: the reaper analyzed the mail log, no request arriving';
my ($line) = new_log() =~ $analyzed;
check defined $line, 'an HS00912 line names the table';
check defined $line && $line =~ /: 2500 live rows, 0 when its statistics were taken/,
      'with its live and last analyzed row counts';

# ---- analyzed once: the next runs see fresh statistics --------------------
my $t1 = last_analyze();
sleep 3.5;
ok t_cmp(last_analyze(), $t1, 'not analyzed again while it does not double');

# ---- one reaper at a time, and only tables its role owns ------------------
# A superuser session (the suite's PostgreSQL trusts loopback) holds the
# function's lock, as another host's reaper would: this server's reaper and
# the module's role get nothing; the same session then calls it as a role
# that owns nothing, and as itself.
(my $su_dsn = $ENV{HYDRA_PG_DSN}) =~ s/;?(?:user|password)=[^;]*//g;
my $su = DBI->connect("dbi:Pg:$su_dsn", 'postgres', '',
                      { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
$su->do("SELECT pg_advisory_lock(hashtextextended('hydra_signup_analyze_grown', 0))");
add_log_rows(3000, 'c'); # 5,500 rows: more than twice the 2,500 analyzed
sub grown_by { # the tables the function analyzed, called through $_[0]
    join ' ', map { $_->[0] } @{ $_[0]->selectall_arrayref(
        "SELECT table_name FROM hydra_signup_analyze_grown()") };
}
ok t_cmp(grown_by($db), '', 'while another reaper holds the lock: nothing');
sleep 2.5; # two runs of this server's reaper
ok t_cmp(last_analyze(), $t1, "and this server's reaper waits its turn");
$su->do("DROP ROLE IF EXISTS hydra_stats_probe");
$su->do("CREATE ROLE hydra_stats_probe NOLOGIN");
$su->do("SET ROLE hydra_stats_probe");
my $as_probe = grown_by($su);
$su->do("RESET ROLE");
ok t_cmp($as_probe, '', 'a role that owns no table analyzes none');
ok t_cmp(grown_by($su), 'hydra_signup_mail_log',
         'the table was grown: its owner (or a superuser) analyzes it');
$su->do("DROP ROLE hydra_stats_probe");
$su->disconnect; # and with it the lock

$db->do("ALTER TABLE hydra_signup_mail_log RESET (autovacuum_enabled)");
reset_db();
