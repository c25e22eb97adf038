# SPDX-License-Identifier: Apache-2.0
package HydraCount;
# TAP::Harness subclass for scripts/test.sh: besides the usual output, it
# appends one line per test file to $HYDRA_COUNT_FILE, counted from the TAP
# itself, so that the closing "N passed, N failed, N skipped" is exact:
#   FILE <tab> name <tab> passed <tab> failed <tab> skipped
#   SKIP <tab> name <tab> reason          (one per skipped test or file)
# A test planned but never run counts as failed; so does a file that exits
# non-zero or has parse errors while all its tests passed.
use strict;
use warnings;
use parent 'TAP::Harness';

sub new {
    my ($class, $args) = @_;
    my $self = $class->SUPER::new($args);
    my %skips;
    $self->callback(parser_args => sub {
        my ($pargs, $job) = @_;
        my $name = $job->[1];
        $pargs->{callbacks}{test} = sub {
            my $t = shift;
            push @{ $skips{$name} }, $t->explanation // '' if $t->has_skip;
        };
    });
    $self->callback(after_test => sub {
        my ($job, $parser) = @_;
        my $name = $job->[1];
        my $planned = $parser->tests_planned // 0;
        my $run = $parser->tests_run;
        my @skipped = $parser->skipped;
        my $failed = scalar $parser->failed;
        my $passed = scalar($parser->passed) - scalar(@skipped);
        my $skipped = scalar @skipped;
        my @reasons = @{ delete $skips{$name} // [] };
        if (defined(my $why = $parser->skip_all)) {
            $skipped = 1;
            @reasons = ($why);
        } else {
            $failed += $planned - $run if $planned > $run;
            my $bad_exit = $parser->exit || $parser->wait;
            $failed += 1 if $failed == 0 && ($bad_exit || $parser->parse_errors || !$planned && !$run);
        }
        my $out = $ENV{HYDRA_COUNT_FILE} or return;
        open my $fh, '>>', $out or die "HydraCount: $out: $!";
        print $fh join("\t", 'FILE', $name, $passed, $failed, $skipped), "\n";
        print $fh join("\t", 'SKIP', $name, $_), "\n" for @reasons;
        close $fh;
    });
    return $self;
}

1;
