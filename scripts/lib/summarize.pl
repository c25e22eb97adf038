#!/usr/bin/perl
# SPDX-License-Identifier: Apache-2.0
# scripts/lib/summarize.pl - the closing lines of scripts/test.sh.
#
#   summarize.pl EXPECTED_SKIPS PART=COUNTFILE...
#
# Each COUNTFILE holds the lines HydraCount.pm writes (FILE, SKIP), plus
# any FILE lines scripts/test.sh adds for failures outside a harness (a
# build that broke, a sanitizer report). Prints one line per part, every
# unexpected skip, and last "N passed, N failed, N skipped". An unexpected
# skip counts as a failure. Exit status 0 only with no failure and at
# least one test passed.
use strict;
use warnings;

my ($expected_file, @parts) = @ARGV;
my @expected;
if (open my $fh, '<', $expected_file) {
    while (<$fh>) {
        next if /^\s*(#|$)/;
        chomp;
        my ($file, $text) = map { s/^\s+|\s+$//gr } (split /\|/, $_, 3)[0, 1];
        push @expected, [$file, $text // ''];
    }
}

my ($P, $F, $S) = (0, 0, 0);
my @unexpected;
for my $spec (@parts) {
    my ($part, $file) = split /=/, $spec, 2;
    my ($p, $f, $s) = (0, 0, 0);
    if (open my $fh, '<', $file) {
        while (<$fh>) {
            chomp;
            my @c = split /\t/;
            if ($c[0] eq 'FILE') {
                $p += $c[2];
                $f += $c[3];
                $s += $c[4];
                print STDERR "  failed: $c[1] ($c[3])\n" if $c[3];
            }
            elsif ($c[0] eq 'SKIP') {
                my ($name, $why) = @c[1, 2];
                $why //= '';
                next if grep { $_->[0] eq $name && index($why, $_->[1]) >= 0 } @expected;
                push @unexpected, "$name: $why";
            }
        }
    }
    else {
        $f++;
        print STDERR "  failed: $part reported nothing ($file missing)\n";
    }
    print STDERR "$part: $p passed, $f failed, $s skipped\n";
    ($P, $F, $S) = ($P + $p, $F + $f, $S + $s);
}
if (@unexpected) {
    print STDERR "unexpected skips (not in $expected_file):\n";
    print STDERR "  $_\n" for @unexpected;
    $F += @unexpected;
}
print "$P passed, $F failed, $S skipped\n";
exit($F == 0 && $P > 0 ? 0 : 1);
