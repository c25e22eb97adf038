# SPDX-License-Identifier: Apache-2.0
# `httpd -t` refuses a DBDriver other than pgsql, wherever it stands, with a
# message naming it: db.c talks libpq on the connections mod_dbd hands out.
# (The sqlite3 driver, libaprutil1-dbd-sqlite3, stands for "another
# driver": mod_dbd itself refuses a driver it cannot load.)
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use File::Temp qw(tempdir);
use lib 't/lib';
use HydraTest ();

my $st = $ENV{HYDRA_STATE};
my $dir = tempdir(CLEANUP => 1);
# the least a served <Location> needs
my $good = join '', map { "$_\n" } (
    'HydraSignupTenants demo',
    "HydraSignupJWTKeyFile $st/jwt-hs256.key",
    "HydraSignupCodeSecretFile $st/code.secret",
    "HydraSignupSpoolDir $st/spool",
    'HydraSignupMailFrom "Demo <noreply@example.net>"',
);

plan tests => 6;

my ($rc, $out) = HydraTest::httpd_t(dir => $dir, inside => $good);
ok t_cmp($rc, 0, 'DBDriver pgsql: accepted') or print "# $out";

($rc, $out) = HydraTest::httpd_t(dir => $dir, inside => $good,
    outside => "DBDriver sqlite3\nDBDParams $dir/x.db");
ok t_cmp($rc, 1, 'DBDriver sqlite3 in the server config: refused');
ok t_cmp($out, qr/HS00190: DBDriver sqlite3 \(\Q$dir\E\/httpd\.conf line \d+\): mod_hydra_signup works with DBDriver pgsql only/,
         'the message names the driver and where it stands');

($rc, $out) = HydraTest::httpd_t(dir => $dir, inside => $good,
    outside => "<VirtualHost 127.0.0.1:1>\nDBDriver \"sqlite3\"\n"
             . "DBDParams $dir/x.db\n</VirtualHost>");
ok t_cmp($rc, 1, 'DBDriver sqlite3 in a virtual host: refused');
ok t_cmp($out, qr/HS00190: DBDriver sqlite3 /, 'named there too');

# the refusal is ours, not mod_dbd's: it names pgsql as what works
ok t_cmp($out, qr/works with DBDriver pgsql only/, 'our refusal');
