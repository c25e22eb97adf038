# SPDX-License-Identifier: Apache-2.0
# SIGKILL in the middle of a queue of 200, at a moment the test chooses:
# the sink holds message 100 in DATA, so the sender is killed while it holds
# that message in cur/. After a restart the claim is recovered and every
# message has arrived at least once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MailerTest;

my $dir  = new_spool();
my $control = "$dir/sink-control.json";
sub control {
    open(my $fh, '>', "$control.tmp") or die;
    print $fh $_[0];
    close $fh or die;
    rename("$control.tmp", $control) or die;
}
control('{"hold_rcpt_pattern": "^crash100@", "hold_seconds": 120}');
my $sink = start_sink($dir, args => ['--control', $control]);
my @common = ('--spool', "$dir/spool", '--smtp',
    "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--lease', 1,
    @FROM);
my @m = map { queue_msg($dir, to => "crash$_\@example.com") } 1 .. 200;
my $held = $m[99];

my $pid = start_mailer("$dir/run1.log", @common);
ok(wait_for(sub { (slurp($sink->{events}) // '') =~ /^held crash100\@/m }, 60),
    'the sender is in DATA for message 100');
stop_proc($pid, 'KILL', 5);
control('{}');
my $before = scalar(received_files($sink->{maildir}));
cmp_ok($before, '<', 200, "killed in the middle ($before delivered)");
is_deeply([ spool_files($dir, 'cur') ], [ $held->{name} ],
    'the held message is in cur/, its claim abandoned');
diag("after SIGKILL: $before delivered, "
    . scalar(spool_files($dir, 'new')) . ' in new/');

# wait for the event recovery needs: the abandoned claim older than the
# 1 s lease (mtime in whole seconds, so two seconds on the clock)
my $f = "$dir/spool/cur/$held->{name}";
ok(wait_for(sub { my $mt = (stat $f)[9]; !defined $mt || time() >= $mt + 2 }, 30),
    'the lease of the abandoned claim ran out');
my ($rc, $log) = run_mailer(120, "$dir/run2.log", @common, '--once');
is($rc, 0, 'restart with --once drains the rest: exit 0');
like($log, qr/recovered \Q$held->{name}\E: claim older than 1s returned to new/,
    'the abandoned claim was recovered');
my $ids = received_ids($sink->{maildir});
ok($ids->{ $held->{msgid} }, 'the held message arrived after the restart');
my @missing = grep { !$ids->{ $_->{msgid} } } @m;
is(scalar @missing, 0, 'every message arrived at least once');
my $dups = grep { $ids->{$_} > 1 } keys %$ids;
diag("messages delivered twice (allowed, at-least-once): $dups");
is(scalar(spool_files($dir, 'new')) + scalar(spool_files($dir, 'cur')), 0,
    'spool empty');
stop_proc($sink->{pid});
done_testing();
