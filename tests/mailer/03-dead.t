# SPDX-License-Identifier: Apache-2.0
# 5xx answers and too-old or unusable messages go to the dead letters.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MailerTest;

my $dir  = new_spool();
my $sink = start_sink($dir,
    args => ['--reject-rcpt-pattern', '^bad', '--reject-code', 550]);
my $url = "smtp://127.0.0.1:$sink->{port}";

my $bad  = queue_msg($dir, to => 'Bad Person <bad1@example.com>');
my $good = queue_msg($dir, to => 'good@example.com');
my $old  = queue_msg($dir, to => 'old@example.com', time => time() - 3 * 86400);
my $noto = queue_msg($dir, raw => "From: a\@hydra.test\r\nSubject: x\r\n\r\nbody\r\n");
# one message, one mailbox: anything naming more is refused, never sent
my $two  = queue_msg($dir, to => 'first@example.com, Second <second@example.com>');
my $cc   = queue_msg($dir, to => 'tocc@example.com',
    extra_headers => "Cc: stranger-cc\@example.com\r\n");
my $twoto = queue_msg($dir, to => 'totwo@example.com',
    extra_headers => "To: stranger-to\@example.com\r\n");
my $bcc  = queue_msg($dir, to => 'tobcc@example.com',
    extra_headers => "Bcc: stranger-bcc\@example.com\r\n");
my @multi = ($two, $cc, $twoto, $bcc);

my ($rc, $log) = run_mailer(20, "$dir/once.log", '--spool', "$dir/spool",
    '--smtp', $url, '--starttls', 'off', '--once', @FROM);
is($rc, 1, '--once with dead letters: exit 1');
my %dead = map { $_ => 1 } spool_files($dir, 'dead');
for my $m ($bad, $old, $noto, @multi) {
    ok($dead{ $m->{name} }, "$m->{name} in dead/");
    ok($dead{"$m->{name}.reason"}, '... with a .reason file');
    is(MailerTest::slurp("$dir/spool/dead/$m->{name}"), $m->{data},
        '... unchanged');
}
my $r = MailerTest::slurp("$dir/spool/dead/$bad->{name}.reason");
like($r, qr/^reason: permanent SMTP failure: 550 at RCPT$/m, 'reason: 550 at RCPT');
like($r, qr/^detail: 550 5\.1\.1 recipient rejected/m, 'reason: server reply');
like($r, qr/^attempts: 1$/m, 'reason: attempts');
like(MailerTest::slurp("$dir/spool/dead/$old->{name}.reason"),
    qr/^reason: expired: queued \S+ ago \(--max-age 48h\)$/m, 'reason: expired');
like(MailerTest::slurp("$dir/spool/dead/$noto->{name}.reason"),
    qr/^reason: no usable To header$/m, 'reason: no To header');
like(MailerTest::slurp("$dir/spool/dead/$two->{name}.reason"),
    qr/^reason: more than one recipient: the To header names 2 addresses; exactly one allowed$/m,
    'reason: two addresses in To');
like(MailerTest::slurp("$dir/spool/dead/$cc->{name}.reason"),
    qr/^reason: more than one recipient: 1 To, 1 Cc\/Bcc header/m, 'reason: a Cc header');
like(MailerTest::slurp("$dir/spool/dead/$twoto->{name}.reason"),
    qr/^reason: more than one recipient: 2 To, 0 Cc\/Bcc header/m, 'reason: two To headers');
like(MailerTest::slurp("$dir/spool/dead/$bcc->{name}.reason"),
    qr/^reason: more than one recipient: 1 To, 1 Cc\/Bcc header/m, 'reason: a Bcc header');
my $rcpts = join(' ', map { @{ $_->{rcpt_tos} } } @{ envelopes($sink) });
unlike($rcpts, qr/first|second|stranger|tocc|totwo|tobcc/,
    'none of the many-recipient messages reached the server');
ok(received_ids($sink->{maildir})->{ $good->{msgid} }, 'the good one delivered');
is(scalar(received_files($sink->{maildir})), 1, 'only that one');
like($log, qr/ERROR dead-lettered \Q$bad->{name}\E to example\.com: permanent SMTP failure: 550 at RCPT/,
    'log: dead letter with domain and reason');
unlike($log, qr/bad1/, 'log holds no local part');
is(scalar(spool_files($dir, 'new')) + scalar(spool_files($dir, 'cur')), 0,
    'nothing left in new/ or cur/');
stop_proc($sink->{pid});

# 554 after the data, into a --dead-letter folder elsewhere
my $dir2  = new_spool();
my $sink2 = start_sink($dir2, args => ['--fail-first', 5, '--fail-code', 554]);
my $m = queue_msg($dir2, to => 'x@example.com');
mkdir "$dir2/elsewhere";
($rc) = run_mailer(20, "$dir2/once.log", '--spool', "$dir2/spool", '--smtp',
    "smtp://127.0.0.1:$sink2->{port}", '--starttls', 'off', '--once',
    '--dead-letter', "$dir2/elsewhere", @FROM);
is($rc, 1, '554 after the data: exit 1');
ok(-f "$dir2/elsewhere/$m->{name}" && -f "$dir2/elsewhere/$m->{name}.reason",
    'moved to --dead-letter DIR');
like(MailerTest::slurp("$dir2/elsewhere/$m->{name}.reason"),
    qr/554 at (BODY|DATA)/, 'reason: 554 after the data');
stop_proc($sink2->{pid});

# Symlinks planted at the dead-letter names (by anyone who can write the
# folder) are neither followed nor replaced: the letter takes the next name.
my $dir3  = new_spool();
my $sink3 = start_sink($dir3, args => ['--reject-rcpt-pattern', '^x', '--reject-code', 550]);
my $m3 = queue_msg($dir3, to => 'x3@example.com');
open(my $tf, '>', "$dir3/target") or die;
print $tf "untouched\n";
close $tf;
symlink("$dir3/target", "$dir3/spool/dead/$m3->{name}") or die "symlink: $!";
symlink("$dir3/dangling", "$dir3/spool/dead/$m3->{name}.reason") or die "symlink: $!";
my $log3;
($rc, $log3) = run_mailer(20, "$dir3/once.log", '--spool', "$dir3/spool", '--smtp',
    "smtp://127.0.0.1:$sink3->{port}", '--starttls', 'off', '--once', @FROM);
is($rc, 1, 'dead letter beside planted symlinks: exit 1');
is(MailerTest::slurp("$dir3/target"), "untouched\n", 'the link target is untouched');
ok(!-e "$dir3/dangling", 'the dangling link was not followed to create its target');
ok(-l "$dir3/spool/dead/$m3->{name}" && -l "$dir3/spool/dead/$m3->{name}.reason",
    'the planted links are still links');
is(MailerTest::slurp("$dir3/spool/dead/$m3->{name}.2"), $m3->{data},
    'the letter went to <name>.2');
like(MailerTest::slurp("$dir3/spool/dead/$m3->{name}.2.reason") // '',
    qr/^reason: permanent SMTP failure: 550 at RCPT$/m, '... with its .reason');
like($log3, qr/see \S+\/\Q$m3->{name}\E\.2\.reason/, 'the log names the file used');
is(scalar(spool_files($dir3, 'cur')) + scalar(spool_files($dir3, 'new')), 0,
    'nothing left in new/ or cur/');
stop_proc($sink3->{pid});
done_testing();
