# SPDX-License-Identifier: Apache-2.0
# POST /v1/public/signup/verify under concurrency (DESIGN.md invariant 4):
# one winner for one code, and never more than MaxAttempts comparisons.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use LWP::UserAgent ();
use POSIX ();
use lib 't/lib';
use HydraTest qw(dbh reset_db post_json get_json json signup_code
                 verify_code);

plan tests => 19, have_lwp;

sub check {
    my ($c, $name) = @_;
    print STDERR "# check failed: $name\n" unless $c;    # shown by the harness
    ok t_cmp($c ? 1 : 0, 1, $name);
}

my $N = 20;
my $db = dbh();
reset_db();
my $url = Apache::TestRequest::module2url('default',
                                          { path => '/v1/public/signup/verify' });

# POSTs every body of @bodies at once, one process each, released together;
# returns the statuses in order. Bounded: a child gives up after 60 s.
sub parallel {
    my (@bodies) = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @kids;
    for my $i (0 .. $#bodies) {
        pipe(my $res_r, my $res_w) or die "pipe: $!";
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            close $go_w;
            close $res_r;
            my $ua = LWP::UserAgent->new(timeout => 60, keep_alive => 0);
            sysread $go_r, my $x, 1;    # returns at EOF: the start signal
            my $res = $ua->post($url, 'Content-Type' => 'application/json',
                                Content => json->encode($bodies[$i]));
            syswrite $res_w, $res->code;
            close $res_w;
            POSIX::_exit(0);
        }
        close $res_w;
        push @kids, [$pid, $res_r];
    }
    close $go_r;
    close $go_w;    # go
    my @codes;
    for my $k (@kids) {
        my $rin = '';
        vec($rin, fileno($k->[1]), 1) = 1;
        my $st = '';
        my $fh = $k->[1];
        $st = <$fh> // '' if select(my $rout = $rin, undef, undef, 90);
        push @codes, $st || 'none';
        waitpid $k->[0], 0;
    }
    return @codes;
}
sub tally {
    my %n;
    $n{$_}++ for @_;
    return join ' ', map { "$_:$n{$_}" } sort keys %n;
}
sub code_row {
    return $db->selectrow_hashref(
        "SELECT attempts, void, consumed_at IS NOT NULL AS consumed
         FROM hydra_signup_codes WHERE customer_id = ?", undef, shift);
}
sub wrong { my $c = shift; return sprintf '%06d', ($c + $_[0]) % 1000000 }

# ---- 20 requests with the same right code: exactly one 200 -------------
{
    my ($id, $code) = signup_code(email => 'race@example.com');
    check defined $code, 'signup mailed a code';
    my @st = parallel(map { { email => 'race@example.com', code => $code,
                              tenant_slug => 'demo' } } 1 .. $N);
    # the others find the address active: counted as any address without
    # a code is (issue 12): 400 x MaxAttempts (5), then 429
    ok t_cmp(tally(@st), "200:1 400:5 429:" . ($N - 6),
             "$N concurrent right codes: exactly one 200, the rest as for an "
             . 'active address (400 x5, then 429)');
    my ($n) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_refresh_tokens WHERE customer_id = ?",
        undef, $id);
    ok t_cmp($n, 1, 'one refresh token recorded');
    my ($status) = $db->selectrow_array(
        "SELECT status FROM customers WHERE id = ?", undef, $id);
    ok t_cmp($status, 'active', 'the customer is active');
    check code_row($id)->{consumed}, 'the code is consumed';
    ok t_cmp(verify_code('race@example.com', $code)->code, 429,
             'and stays used (429: past the attempts of an active address)');
}

# ---- 20 wrong guesses at once, MaxAttempts 5 ----------------------------
{
    my ($id, $code) = signup_code(email => 'guess@example.com');
    check defined $code, 'signup mailed a code';
    my @st = parallel(map { { email => 'guess@example.com',
                              code => wrong($code, $_),
                              tenant_slug => 'demo' } } 1 .. $N);
    ok t_cmp(tally(@st), "400:5 429:" . ($N - 5),
             'five compared (400), every other one refused (429)');
    my $k = code_row($id);
    ok t_cmp($k->{attempts}, $N, 'every attempt counted in the database');
    ok t_cmp($k->{void}, 1, 'the code is void');
    my $res = verify_code('guess@example.com', $code);
    ok t_cmp($res->code, 429, 'the right code afterwards: 429');
    check $res->header('Retry-After'), 'with Retry-After';
    ok t_cmp(code_row($id)->{attempts}, $N + 1, 'that try counted too');
}

# ---- 19 wrong guesses racing the right code ----------------------------
# The right code wins only if it is among the first five compared; in any
# order at most five comparisons happen (400 + 200 <= 5).
{
    my ($id, $code) = signup_code(email => 'mixed@example.com');
    check defined $code, 'signup mailed a code';
    my @bodies = map { { email => 'mixed@example.com',
                         code => wrong($code, $_), tenant_slug => 'demo' } }
                 1 .. $N - 1;
    splice @bodies, 10, 0, { email => 'mixed@example.com', code => $code,
                             tenant_slug => 'demo' };
    my @st = parallel(@bodies);
    my $ok = grep { $_ eq '200' } @st;
    my $bad = grep { $_ eq '400' } @st;
    my $locked = grep { $_ eq '429' } @st;
    ok t_cmp($ok + $bad + $locked, $N, 'every answer is 200, 400 or 429');
    my $k = code_row($id);
    # once the code is consumed, later guesses are 400 without an attempt:
    # a winner was among the first five attempts counted
    check $ok <= 1 && ($ok ? $k->{attempts} <= 5 : $bad <= 5),
        "at most 5 comparisons, at most one winner (" . tally(@st)
        . ", $k->{attempts} attempts)";
    check($ok ? $k->{consumed} : $k->{void},
          $ok ? 'won: consumed' : 'lost: void');
}

# ---- concurrent wrong guesses on separate signups do not interfere ------
{
    my @who = map { "p$_\@example.com" } 1 .. 4;
    my %code;
    for my $e (@who) {
        (undef, $code{$e}) = signup_code(email => $e);
    }
    my @st = parallel(map { my $e = $_;
                            map { { email => $e, code => wrong($code{$e}, $_),
                                    tenant_slug => 'demo' } } 1 .. 3 } @who);
    ok t_cmp(tally(@st), '400:12', '3 wrong guesses each on 4 signups: all 400');
    my @ok = parallel(map { { email => $_, code => $code{$_},
                              tenant_slug => 'demo' } } @who);
    ok t_cmp(tally(@ok), '200:4', 'then each right code wins');
}
