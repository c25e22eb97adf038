# Guessing a code is bounded over time and tells nothing (issue 12,
# CONTRACT.md section 1, verify): HydraSignupMaxAttemptsPerDay (20) wrong
# codes per address of a tenant in 24 h across every code it was sent, and
# the sequence of answers to wrong codes is the same for a pending, an
# active (concealed or not) and an unknown address: 400 x MaxAttempts (5),
# then 429 until a new signup request; the per-day cap the same way.
# vhost_guess / vhost_guess_plain: t/conf/hydra_issue12.conf.in.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json check
                 signup_code verify_code);

plan tests => 22, have_lwp;

my $db = dbh();
reset_db();
add_tenant(slug => 'guess', nodes => [[1000, 0]]);
# the attempt counters live in httpd's shared cache, which outlives the
# database reset: addresses of this run only
my $run = sprintf '%x%x', time, $$;
sub addr { "$_[0]-$run\@guess.example.com" }

# every row and mail of the tenant sent an hour earlier: the resend
# interval is over (no waiting)
sub backdate {
    $db->do("UPDATE hydra_signup_codes k SET sent_at = sent_at - interval
             '1 hour' FROM customers c WHERE c.id = k.customer_id");
    $db->do("UPDATE hydra_signup_mail_log SET sent_at = sent_at - interval
             '1 hour'");
    $db->do("UPDATE hydra_signup_decoys SET sent_at = sent_at - interval
             '1 hour'") if $db->selectrow_array(
        "SELECT to_regclass('hydra_signup_decoys') IS NOT NULL");
}
# status, detail, Retry-After present (y/n): what a client can observe
sub seen {
    my ($res) = @_;
    my $d = get_json($res) // {};
    return join ' ', $res->code, $d->{detail} // '-',
        defined $res->header('Retry-After') ? 'retry' : 'no-retry';
}
sub wrong_codes {    # n wrong guesses for email: their answers
    my ($email, $n) = @_;
    return map { seen(verify_code($email, '000000', 'guess')) } 1 .. $n;
}
sub statuses { join ',', map { (split ' ', $_)[0] } @_ }

# ---- the per-day cap, across re-sent codes -------------------------------
Apache::TestRequest::module('vhost_guess_plain');
{
    my $email = addr('daily');
    my @st;
    for my $round (1 .. 4) {
        backdate();
        my ($id, $code, $res) = signup_code(email => $email, tenant => 'guess',
                                            company => 'Daily Co');
        check(defined $code, "code $round mailed")
            if $round == 1 || $round == 4;
        push @st, map { (split ' ', $_)[0] }
            wrong_codes($email, 5);    # wrong codes 1-20
    }
    ok t_cmp(join(',', @st), join(',', (400) x 20),
             '20 wrong codes over 4 re-sent codes: 400 each');
    backdate();
    my ($id, $code, $res) = signup_code(email => $email, tenant => 'guess',
                                        company => 'Daily Co');
    check(defined $code, 'a fifth, fresh code is mailed');
    my $r21 = verify_code($email, $code eq '000000' ? '000001' : '000000',
                          'guess');
    ok t_cmp($r21->code, 429, 'the 21st wrong code in 24 h: 429, even with '
             . 'a fresh code');
    my $ra = $r21->header('Retry-After') // '';
    check($ra =~ /^\d+$/ && $ra > 3600 && $ra <= 86401,
          "429 with Retry-After until the 24 h window ends ($ra)");
    my $right = verify_code($email, $code, 'guess');
    ok t_cmp($right->code, 429, 'even the right code waits for the window');
    my ($status) = $db->selectrow_array(
        "SELECT status FROM customers WHERE id = ?", undef, $id);
    ok t_cmp($status, 'pending', 'and the customer stays pending');
    # another address of the same tenant is not held back
    my $other = addr('other');
    signup_code(email => $other, tenant => 'guess', company => 'Other Co');
    ok t_cmp(statuses(wrong_codes($other, 1)), '400',
             'another address has its own count');
}

# ---- the same sequence for pending, active and unknown -------------------
# an active customer (made in the database: a verify with the right code
# would be an attempt of its own)
sub make_active {
    my ($email) = @_;
    my ($id) = signup_code(email => $email, tenant => 'guess',
                           company => 'Active Co');
    $db->do("UPDATE customers SET status = 'active', verified_at = now()
             WHERE id = ?", undef, $id);
    $db->do("DELETE FROM hydra_signup_codes WHERE customer_id = ?", undef,
            $id);
}

for my $vhost (qw(vhost_guess vhost_guess_plain)) {
    Apache::TestRequest::module($vhost);
    my $conceal = $vhost eq 'vhost_guess';
    my %who = (pending => addr("p-$vhost"), active => addr("a-$vhost"),
               unknown => addr("u-$vhost"));
    make_active($who{active});
    backdate();
    my ($id, $code) = signup_code(email => $who{pending}, tenant => 'guess',
                                  company => 'Pending Co');
    if ($conceal) {
        my $res = post_json('/v1/public/signup', {
            company_name => 'Active Co', email => $who{active},
            tenant_slug => 'guess' });
        ok t_cmp($res->code, 201, "$vhost: the active address signs up "
                 . 'again (concealed: 201)');
    }
    # six wrong codes each
    my %seq = map { $_ => join(' | ', wrong_codes($who{$_}, 6)) } keys %who;
    ok t_cmp(statuses(split / \| /, $seq{pending}),
             '400,400,400,400,400,429', "$vhost: pending: 400 x5, then 429");
    ok t_cmp($seq{active}, $seq{pending},
             "$vhost: active: the same answers, field for field");
    ok t_cmp($seq{unknown}, $seq{pending},
             "$vhost: unknown: the same answers, field for field");
    if ($conceal) {
        # a new signup request restarts the count, for pending and the
        # concealed active address alike; the unknown address stays locked
        my $resignup = sub {
            backdate();
            for my $k (qw(pending active)) {
                my $res = post_json('/v1/public/signup', {
                    company_name => $k eq 'pending' ? 'Pending Co'
                                                    : 'Active Co',
                    email => $who{$k}, tenant_slug => 'guess' });
                die "re-signup of $k: " . $res->code unless $res->code == 201;
            }
        };
        $resignup->();
        my %again = map { $_ => join(' | ', wrong_codes($who{$_}, 6)) }
            keys %who;
        ok t_cmp(statuses(split / \| /, $again{pending}),
                 '400,400,400,400,400,429',
                 "$vhost: after a new code: 400 x5, then 429 again");
        ok t_cmp($again{active}, $again{pending},
                 "$vhost: active after a re-signup: the same answers");
        ok t_cmp(statuses(split / \| /, $again{unknown}),
                 '429,429,429,429,429,429',
                 "$vhost: unknown, no signup: still 429");
        # 18 attempts each after a third round; a fourth code: the 19th and
        # 20th are 400, the 21st meets the day cap - for both alike
        $resignup->();
        wrong_codes($who{$_}, 6) for qw(pending active);
        $resignup->();
        my %day = map { $_ => join(' | ', wrong_codes($who{$_}, 3)) }
            qw(pending active);
        ok t_cmp(statuses(split / \| /, $day{pending}), '400,400,429',
                 "$vhost: pending: the 21st attempt of the day is 429");
        ok t_cmp($day{active}, $day{pending},
                 "$vhost: active: the day cap at the same attempt");
    }
}

# ---- an address with nothing to verify costs a transaction id ---------------
# as a counted attempt does, so that its COMMIT waits for a WAL flush too and
# the answer's time does not tell a pending signup from none
sub next_xid {
    return ($db->selectrow_array(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))[0];
}
my $x0 = next_xid();
my $st = statuses(wrong_codes(addr('nobody-xid'), 3));
my $took = next_xid() - $x0;
ok t_cmp("$st: " . ($took >= 3 ? 'a transaction id each' : "$took ids"),
         '400,400,400: a transaction id each',
         'three wrong codes for an unknown address: 400, one transaction id each');
