# SPDX-License-Identifier: Apache-2.0
package MailerTest;
# Helpers for the hydra-signup-mailer tests: temp spools, queued messages,
# the SMTP sink (tools/smtp-sink.py) and the sender as child processes.
# Every wait is bounded.
use strict;
use warnings;
use Exporter 'import';
use Cwd qw(abs_path getcwd);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(mailer_bin new_spool queue_msg start_sink stop_proc
  start_mailer run_mailer wait_for received_files received_ids free_port
  slurp spool_files msgid_of kill_all envelopes @FROM);

# The sender's own envelope sender (--from is required); the messages the
# tests queue say From: noreply@hydra.test, which must never be used.
our @FROM = ('--from', 'Hydra Bounces <bounce@hydra.test>');

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my @CHILDREN;

sub mailer_bin {
    my $b = $ENV{HYDRA_MAILER} // './hydra-signup-mailer';
    $b = getcwd() . "/$b" unless $b =~ m{^/};
    die "mailer binary $b not found (set HYDRA_MAILER)\n" unless -x $b;
    return $b;
}

sub slurp {
    my ($f) = @_;
    open(my $fh, '<:raw', $f) or return undef;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

sub new_spool {
    my $d = tempdir('hsmailer-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$d/spool" or die;
    mkdir "$d/spool/$_" or die for qw(tmp new cur dead);
    return $d;
}

my $SEQ = 0;

# queue_msg($dir, to => ..., from => ..., body => ..., time => epoch,
#           extra_headers => "X-A: b\r\n", raw => complete message)
# Returns { name, data, msgid }.
sub queue_msg {
    my ($dir, %a) = @_;
    my $t   = $a{time} // int(time());
    my $usec = int((time() - int(time())) * 1e6);
    $SEQ++;
    my $name = sprintf('%d.M%06dP%dR%08x.testhost', $t, $usec, $$,
        $SEQ * 7919 + int(rand(65536)));
    my $msgid = sprintf('<%d.%d.%d@hydra.test>', $t, $$, $SEQ);
    my $data = $a{raw} // join('',
        'Date: Mon, 01 Jan 2024 00:00:00 +0000', "\r\n",
        'From: ', ($a{from} // 'Hydra Signup <noreply@hydra.test>'), "\r\n",
        'To: ', ($a{to} // "user$SEQ\@example.com"), "\r\n",
        "Message-ID: $msgid\r\n",
        'Subject: Your verification code', "\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        ($a{extra_headers} // ''),
        "\r\n",
        ($a{body} // "Your code:\r\n\r\n" . sprintf('%06d', $SEQ % 1000000)
            . "\r\n\r\nIt expires in 15 minutes.\r\n"));
    my $tmp = "$dir/spool/tmp/$name";
    open(my $fh, '>:raw', $tmp) or die "$tmp: $!";
    print $fh $data;
    close $fh or die;
    rename($tmp, "$dir/spool/new/$name") or die "rename: $!";
    return { name => $name, data => $data, msgid => $msgid };
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1, ReuseAddr => 1) or die "bind: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# start_sink($dir, port => N, args => [...])
#   -> { pid, port, maildir, envlog, events }
sub start_sink {
    my ($dir, %a) = @_;
    my $maildir = $a{maildir} // "$dir/mail";
    my $envlog  = "$dir/envelope.log";
    my $events  = "$dir/events.log";
    my $port    = $a{port} // 0;
    pipe(my $r, my $w) or die;
    my $pid = fork() // die;
    if ($pid == 0) {
        close $r;
        open(STDOUT, '>&', $w) or die;
        open(STDERR, '>>', "$dir/sink.err") or die;
        exec('/usr/bin/python3', "$ROOT/tools/smtp-sink.py",
            '--port', $port, '--maildir', $maildir, '--envelope-log',
            $envlog, '--event-log', $events, @{ $a{args} // [] })
            or die "exec: $!";
    }
    close $w;
    push @CHILDREN, $pid;
    my $line = '';
    my $deadline = time() + 15;
    my $rin = '';
    vec($rin, fileno($r), 1) = 1;
    while (time() < $deadline && $line !~ /\n/) {
        my $rout = $rin;
        next unless select($rout, undef, undef, 0.2) > 0;
        my $n = sysread($r, my $buf, 256);
        last unless $n;
        $line .= $buf;
    }
    die "sink did not start: $line\n" . (slurp("$dir/sink.err") // '')
        unless $line =~ /^listening on 127\.0\.0\.1:(\d+)/;
    return { pid => $pid, port => $1, maildir => $maildir, envlog => $envlog,
        events => $events, fh => $r };
}

# SIGTERM, then SIGKILL after $grace seconds; returns the exit status.
sub stop_proc {
    my ($pid, $sig, $grace) = @_;
    return undef unless $pid;
    kill($sig // 'TERM', $pid);
    my $deadline = time() + ($grace // 10);
    while (time() < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            @CHILDREN = grep { $_ != $pid } @CHILDREN;
            return $?;
        }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    @CHILDREN = grep { $_ != $pid } @CHILDREN;
    return -1;
}

sub start_mailer {
    my ($log, @args) = @_;
    my $bin = mailer_bin();
    my $pid = fork() // die;
    if ($pid == 0) {
        open(STDERR, '>>', $log) or die;
        open(STDOUT, '>>', $log) or die;
        my @pre = $ENV{HYDRA_MAILER_WRAPPER}
            ? split(' ', $ENV{HYDRA_MAILER_WRAPPER}) : ();
        exec(@pre, $bin, @args) or die "exec: $!";
    }
    push @CHILDREN, $pid;
    return $pid;
}

# Runs the sender to completion (bounded); returns (exit code, log text).
sub run_mailer {
    my ($timeout, $log, @args) = @_;
    my $pid = start_mailer($log, @args);
    my $deadline = time() + $timeout;
    while (time() < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            @CHILDREN = grep { $_ != $pid } @CHILDREN;
            return ($? >> 8, slurp($log));
        }
        sleep 0.02;
    }
    stop_proc($pid, 'KILL', 2);
    return (-1, slurp($log));
}

sub wait_for {
    my ($cond, $timeout) = @_;
    my $deadline = time() + $timeout;
    while (time() < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->() ? 1 : 0;
}

sub received_files {
    my ($maildir) = @_;
    opendir(my $d, $maildir) or return ();
    my @f = sort grep { /\.eml$/ && !/^\./ } readdir $d;
    closedir $d;
    return map {"$maildir/$_"} @f;
}

sub msgid_of {
    my ($data) = @_;
    return $data =~ /^Message-ID:\s*(<[^>]+>)/mi ? $1 : undef;
}

sub received_ids {
    my ($maildir) = @_;
    my %ids;
    $ids{ msgid_of(slurp($_)) // 'none' }++ for received_files($maildir);
    return \%ids;
}

# The sink's envelope log as a list of hashes (mail_from, rcpt_tos, ...).
sub envelopes {
    my ($sink) = @_;
    require JSON::PP;
    my $text = slurp($sink->{envlog}) // '';
    return [ map { JSON::PP::decode_json($_) } grep {/\S/} split /\n/, $text ];
}

sub spool_files {
    my ($dir, $sub) = @_;
    opendir(my $d, "$dir/spool/$sub") or return ();
    my @f = sort grep { !/^\./ } readdir $d;
    closedir $d;
    return @f;
}

sub kill_all {
    stop_proc($_, 'KILL', 2) for @CHILDREN;
}

END { local $?; kill_all() }

1;
