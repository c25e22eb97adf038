# SPDX-License-Identifier: Apache-2.0
# 1,000 queued messages drained with --once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MailerTest;

my $n    = $ENV{HYDRA_MAILER_BENCH_N} // 1000;
my $dir  = new_spool();
my $sink = start_sink($dir);
my @m = map { queue_msg($dir, to => "bulk$_\@example.com") } 1 .. $n;

my $t0 = time();
my ($rc) = run_mailer(120, "$dir/once.log", '--spool', "$dir/spool",
    '--smtp', "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--once', @FROM);
my $dt = time() - $t0;
is($rc, 0, '--once exit 0');
is(scalar(received_files($sink->{maildir})), $n, "$n messages received");
my $ids = received_ids($sink->{maildir});
is(scalar(grep { !$ids->{ $_->{msgid} } } @m), 0, 'none missing');
is(scalar(spool_files($dir, 'new')), 0, 'new/ empty');
diag(sprintf('%d messages in %.2f s: %.0f messages/second', $n, $dt, $n / $dt));
stop_proc($sink->{pid});
done_testing();
