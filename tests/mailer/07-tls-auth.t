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
    "smtp://127.0.0.1:$sink->{port}", '--once', @FROM);

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

# AUTH only over TLS: credentials with --starttls off or optional on an
# smtp:// URL are refused at start, before any connection
my $envs_before = scalar @{ envelopes($sink) };
for my $mode (qw(off optional)) {
    my ($rcx, $logx) = run_mailer(30, "$dir/notls-$mode.log", @common,
        '--starttls', $mode, '--ca-file', "$dir/cert.pem", '--auth-file',
        "$dir/auth");
    is($rcx, 2, "--auth-file with --starttls $mode: exit 2");
    like($logx, qr/--auth-file needs TLS/, '... with a clear message');
    unlike($logx, qr/s3cret/, '... without the password');
}
is(scalar @{ envelopes($sink) }, $envs_before, 'nothing was sent meanwhile');
ok(scalar(grep { $_ eq $m2->{name} || index($_, "$m2->{name},") == 0 }
    spool_files($dir, 'new')), 'the waiting message is still queued');

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
    '--smtp', "smtp://127.0.0.1:$plain->{port}", '--once', @FROM);
is($rc4, 75, 'STARTTLS required (the default) but not offered: exit 75');
like($log4, qr/STARTTLS/, 'the log says why');
is(scalar(received_files($plain->{maildir})), 0, 'nothing sent in clear');
my $opt = queue_msg($dir2, to => 'opt@example.com');
my ($rc5) = run_mailer(30, "$dir2/b.log", '--spool', "$dir2/spool",
    '--smtp', "smtp://127.0.0.1:$plain->{port}", '--once', '--starttls',
    'optional', @FROM);
is($rc5, 0, '--starttls optional: sent without TLS');
ok(received_ids($plain->{maildir})->{ $opt->{msgid} }, '... and received');
stop_proc($plain->{pid});

# smtps:// (TLS from the first byte) with AUTH: allowed, whatever --starttls
my $dir3 = new_spool();
my $wrapped = start_sink($dir3, args => ['--tls-cert', "$dir/cert.pem",
    '--tls-key', "$dir/key.pem", '--tls-wrap', '--auth', 'mailer:s3cret-pw']);
my $m3 = queue_msg($dir3, to => 'smtps@example.com');
my ($rc6, $log6) = run_mailer(30, "$dir3/a.log", '--spool', "$dir3/spool",
    '--smtp', "smtps://127.0.0.1:$wrapped->{port}", '--once', '--starttls',
    'off', '--ca-file', "$dir/cert.pem", '--auth-file', "$dir/auth", @FROM);
is($rc6, 0, 'smtps:// with --auth-file (and --starttls off): delivered');
my ($e6) = @{ envelopes($wrapped) };
ok($e6 && $e6->{tls} && $e6->{auth}, 'the sink saw TLS and AUTH');
is($e6 && $e6->{mail_from}, 'bounce@hydra.test', 'envelope sender is --from');
stop_proc($wrapped->{pid});
done_testing();
