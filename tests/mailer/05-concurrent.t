# SPDX-License-Identifier: Apache-2.0
# Two senders on one spool: each message is claimed by exactly one of them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MailerTest;

my $dir  = new_spool();
my $sink = start_sink($dir, args => ['--delay', '0.002']);
my @common = ('--spool', "$dir/spool", '--smtp',
    "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--verbose', @FROM);
my @m = map { queue_msg($dir, to => "both$_\@example.com") } 1 .. 200;

my $pa = start_mailer("$dir/a.log", @common);
my $pb = start_mailer("$dir/b.log", @common);
ok(wait_for(sub { received_files($sink->{maildir}) >= 200 }, 60),
    '200 delivered by the two senders');
# a moment for any duplicate to show up
ok(wait_for(sub { !spool_files($dir, 'new') && !spool_files($dir, 'cur') }, 5),
    'spool empty');
is(stop_proc($pa) >> 8, 0, 'sender A stops cleanly');
is(stop_proc($pb) >> 8, 0, 'sender B stops cleanly');

my $ids = received_ids($sink->{maildir});
is(scalar(received_files($sink->{maildir})), 200, 'exactly 200 messages received');
is(scalar(grep { $ids->{$_} > 1 } keys %$ids), 0, 'no message delivered twice');
is(scalar(grep { !$ids->{ $_->{msgid} } } @m), 0, 'none missing');
my $na = () = (MailerTest::slurp("$dir/a.log") =~ /INFO delivered /g);
my $nb = () = (MailerTest::slurp("$dir/b.log") =~ /INFO delivered /g);
is($na + $nb, 200, "the senders' logs add up (A $na, B $nb)");
my %by;
for my $who ([a => "$dir/a.log"], [b => "$dir/b.log"]) {
    my $text = MailerTest::slurp($who->[1]) // '';
    $by{$1}{ $who->[0] }++ while $text =~ /INFO delivered (\S+)/g;
}
is(scalar(grep { keys %{ $by{$_} } > 1 } keys %by), 0,
    'no message name delivered by both');
diag("A delivered $na, B delivered $nb");
stop_proc($sink->{pid});
done_testing();
