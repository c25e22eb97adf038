# SPDX-License-Identifier: Apache-2.0
# A 4xx answer, then retried and delivered; the SMTP server down, then up.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MailerTest;

my $dir  = new_spool();
my $sink = start_sink($dir, args => ['--fail-first', 1, '--fail-code', 451]);
my $url  = "smtp://127.0.0.1:$sink->{port}";
my @common = ('--spool', "$dir/spool", '--smtp', $url, '--starttls', 'off',
    '--retry-base', 1, '--retry-max', 2, @FROM);

my $m = queue_msg($dir, to => 'retry@example.com');
my $before = int(time());
my ($rc, $log) = run_mailer(20, "$dir/once.log", @common, '--once');
my $after = int(time());
is($rc, 75, '--once after a 451: exit 75 (waits for a retry)');
my @new = spool_files($dir, 'new');
is(scalar @new, 1, 'message back in new/');
like($new[0] // '', qr/^\Q$m->{name}\E,r=1,t=\d+$/,
    'retry state in the name: <unique>,r=1,t=<epoch>');
my ($t) = ($new[0] // '') =~ /,t=(\d+)$/;
# the failure happened between $before and $after; the back-off is 1 s
# (--retry-base 1, jitter 0.8-1.2, rounded): whatever the machine's speed
ok($t && $t >= $before + 1 && $t <= $after + 1,
    'next attempt 1 s after the failure');
like($log, qr/WARN temporary failure for \Q$m->{name}\E to example\.com \(attempt 1\).*451/,
    'log: temporary failure with the code');
is(scalar(received_files($sink->{maildir})), 0, 'nothing accepted yet');

# not due yet: --once leaves it alone and succeeds
($rc) = run_mailer(20, "$dir/once2.log", @common, '--once');
is($rc, 0, '--once with nothing due: exit 0');

my $pid = start_mailer("$dir/daemon.log", @common);
ok(wait_for(sub { received_ids($sink->{maildir})->{ $m->{msgid} } }, 10),
    'delivered on the retry');
ok(wait_for(sub { !spool_files($dir, 'new') && !spool_files($dir, 'cur') }, 5),
    'spool empty');
like(slurp($sink->{maildir} . '/' . (map { s{.*/}{}r } received_files($sink->{maildir}))[0]),
    qr/\Q$m->{msgid}\E/, 'the right message');
is(stop_proc($pid) >> 8, 0, 'daemon stops cleanly');
# (under valgrind the second --once may already find it due)
like((slurp("$dir/once2.log") // '') . slurp("$dir/daemon.log"), qr/INFO delivered \Q$m->{name}\E to example\.com \(attempt 2,/,
    'log: delivered at attempt 2');
stop_proc($sink->{pid});

# --- the server down, then up
my $dir2 = new_spool();
my $port = free_port();
my @m2 = map { queue_msg($dir2, to => "down$_\@example.com") } 1 .. 3;
my $pid2 = start_mailer("$dir2/daemon.log", '--spool', "$dir2/spool",
    '--smtp', "smtp://127.0.0.1:$port", '--starttls', 'off',
    '--retry-base', 1, '--retry-max', 2, @FROM);
ok(wait_for(sub { (grep {/,r=\d+,t=/} spool_files($dir2, 'new')) == 3 }, 10),
    'server down: all three rescheduled');
like(slurp("$dir2/daemon.log"), qr/WARN temporary failure .*connect/i,
    'log says it could not connect');
my $sink2 = start_sink($dir2, port => $port);
ok(wait_for(sub { received_files($sink2->{maildir}) >= 3 }, 15),
    'all delivered after the server came back');
my $ids = received_ids($sink2->{maildir});
is_deeply([sort keys %$ids], [sort map { $_->{msgid} } @m2], 'the three messages');
is(stop_proc($pid2) >> 8, 0, 'daemon stops cleanly');
stop_proc($sink2->{pid});

# --- the server down with a queue: one attempt a second, no busy loop.
# Each deferral renames a message within new/, which inotify reports; a
# sender that rescanned new/ at once on that tried the next message at
# once, and with a large queue kept a core busy scanning new/.
my $dir3 = new_spool();
my $port3 = free_port();
queue_msg($dir3, to => "queued$_\@example.com") for 1 .. 40;
my $pid3 = start_mailer("$dir3/daemon.log", '--spool', "$dir3/spool",
    '--smtp', "smtp://127.0.0.1:$port3", '--starttls', 'off',
    '--retry-base', 60, '--retry-max', 120, @FROM);
ok(wait_for(sub { (slurp("$dir3/daemon.log") // "") =~ /temporary failure/ }, 10),
    'server down: the first attempt failed');
sleep 4;    # a window to count attempts in, not a synchronisation
my $tries = () = (slurp("$dir3/daemon.log") // "") =~ /temporary failure/g;
ok($tries >= 2 && $tries <= 9,
    "server down, 40 messages due: $tries attempts in about 4 s (one a second, not one per message at once)");
is(stop_proc($pid3) >> 8, 0, 'daemon stops cleanly');
done_testing();
