# SPDX-License-Identifier: Apache-2.0
# SIGKILL in the middle of a queue of 200; after a restart every message has
# arrived at least once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MailerTest;

my $dir  = new_spool();
my $sink = start_sink($dir, args => ['--delay', '0.01']);
my @common = ('--spool', "$dir/spool", '--smtp',
    "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--lease', 1);
my @m = map { queue_msg($dir, to => "crash$_\@example.com") } 1 .. 200;

my $pid = start_mailer("$dir/run1.log", @common);
ok(wait_for(sub { received_files($sink->{maildir}) >= 50 }, 30),
    'first sender under way');
stop_proc($pid, 'KILL', 5);
my $before = scalar(received_files($sink->{maildir}));
cmp_ok($before, '<', 200, "killed in the middle ($before delivered)");
my $held = scalar(spool_files($dir, 'cur'));
diag("after SIGKILL: $before delivered, $held in cur/, "
    . scalar(spool_files($dir, 'new')) . ' in new/');

sleep 1.2; # past the 1 s lease
my ($rc, $log) = run_mailer(60, "$dir/run2.log", @common, '--once');
is($rc, 0, 'restart with --once drains the rest: exit 0');
like($log, qr/recovered \S+: claim older than 1s returned to new/, 'cur/ recovered')
    if $held;
my $ids = received_ids($sink->{maildir});
my @missing = grep { !$ids->{ $_->{msgid} } } @m;
is(scalar @missing, 0, 'every message arrived at least once');
my $dups = grep { $ids->{$_} > 1 } keys %$ids;
diag("messages delivered twice (allowed, at-least-once): $dups");
is(scalar(spool_files($dir, 'new')) + scalar(spool_files($dir, 'cur')), 0,
    'spool empty');
stop_proc($sink->{pid});
done_testing();
