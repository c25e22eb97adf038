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

my ($rc, $log) = run_mailer(20, "$dir/once.log", '--spool', "$dir/spool",
    '--smtp', $url, '--starttls', 'off', '--once');
is($rc, 1, '--once with dead letters: exit 1');
my %dead = map { $_ => 1 } spool_files($dir, 'dead');
for my $m ($bad, $old, $noto) {
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
    '--dead-letter', "$dir2/elsewhere");
is($rc, 1, '554 after the data: exit 1');
ok(-f "$dir2/elsewhere/$m->{name}" && -f "$dir2/elsewhere/$m->{name}.reason",
    'moved to --dead-letter DIR');
like(MailerTest::slurp("$dir2/elsewhere/$m->{name}.reason"),
    qr/554 at (BODY|DATA)/, 'reason: 554 after the data');
stop_proc($sink2->{pid});
done_testing();
