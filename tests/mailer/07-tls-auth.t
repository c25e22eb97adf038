# SPDX-License-Identifier: Apache-2.0
# STARTTLS (required, against a server with and without it) and AUTH from a
# file.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MailerTest;

my $dir = new_spool();
open(my $saved, '>&', \*STDERR) or die;
open(STDERR, '>', "$dir/openssl.err") or die;
my $ok = system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', 1,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', "$dir/key.pem", '-out', "$dir/cert.pem") == 0;
open(STDERR, '>&', $saved) or die;
$ok or plan skip_all => 'openssl cannot make a test certificate';
open(my $fh, '>', "$dir/auth") or die;
print $fh "mailer:s3cret-pw\n";
close $fh;
chmod 0600, "$dir/auth";

my $sink = start_sink($dir, args => ['--tls-cert', "$dir/cert.pem",
    '--tls-key', "$dir/key.pem", '--auth', 'mailer:s3cret-pw']);
my @common = ('--spool', "$dir/spool", '--smtp',
    "smtp://127.0.0.1:$sink->{port}", '--once');

my $m = queue_msg($dir, to => 'tls@example.com');
my ($rc, $log) = run_mailer(30, "$dir/a.log", @common, '--starttls',
    'required', '--ca-file', "$dir/cert.pem", '--auth-file', "$dir/auth");
is($rc, 0, 'STARTTLS + AUTH: delivered');
like(MailerTest::slurp($sink->{envlog}) // '', qr/"tls": true, "auth": true/,
    'the sink saw TLS and AUTH');
unlike($log, qr/s3cret/, 'the password is not logged');

# no credentials: 530 at MAIL is our set-up, not the message: retried
my $m2 = queue_msg($dir, to => 'noauth@example.com');
($rc, $log) = run_mailer(30, "$dir/b.log", @common, '--starttls', 'required',
    '--ca-file', "$dir/cert.pem");
is($rc, 75, 'no AUTH: temporary (exit 75), not dead-lettered');
is(scalar(spool_files($dir, 'dead')), 0, 'nothing in dead/');

# untrusted certificate (no --ca-file): temporary
queue_msg($dir, to => 'untrusted@example.com');
my ($rc3, $log3) = run_mailer(30, "$dir/c.log", @common, '--starttls',
    'required', '--auth-file', "$dir/auth");
is($rc3, 75, 'untrusted certificate: temporary (exit 75)');
like($log3, qr/certificate/i, 'the log says why');
stop_proc($sink->{pid});

# STARTTLS required but not offered
my $dir2  = new_spool();
my $plain = start_sink($dir2);
queue_msg($dir2, to => 'x@example.com');
my ($rc4, $log4) = run_mailer(30, "$dir2/a.log", '--spool', "$dir2/spool",
    '--smtp', "smtp://127.0.0.1:$plain->{port}", '--once');
is($rc4, 75, 'STARTTLS required (the default) but not offered: exit 75');
like($log4, qr/STARTTLS/, 'the log says why');
is(scalar(received_files($plain->{maildir})), 0, 'nothing sent in clear');
my $opt = queue_msg($dir2, to => 'opt@example.com');
my ($rc5) = run_mailer(30, "$dir2/b.log", '--spool', "$dir2/spool",
    '--smtp', "smtp://127.0.0.1:$plain->{port}", '--once', '--starttls',
    'optional');
is($rc5, 0, '--starttls optional: sent without TLS');
ok(received_ids($plain->{maildir})->{ $opt->{msgid} }, '... and received');
stop_proc($plain->{pid});
done_testing();
