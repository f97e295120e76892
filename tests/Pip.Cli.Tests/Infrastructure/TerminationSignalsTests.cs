using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Pip.Cli.Infrastructure;

namespace Pip.Cli.Tests.Infrastructure;

/// <summary>
/// Cancellation (Ctrl-C, SIGTERM, the run's token) at every phase of a command ends with the "cancelled." message and
/// exit code 130, no stack trace and no partial output.
/// </summary>
[Collection(TinyModelCollection.Name)]
public sealed partial class TerminationSignalsTests(TinyModelFixture fixture)
{
    private static void ShouldBeCleanCancellation(CliRun run)
    {
        run.ExitCode.Should().Be(ExitCodes.Cancelled, run.Error);
        run.Error.Should().Contain("cancelled.").And.NotContain("Exception").And.NotContain("   at ");
        run.Out.Should().BeEmpty();
    }

    [Theory]
    [InlineData("Loading", "load")]
    [InlineData("Loaded", "tokenize")]
    [InlineData("Tokenized", "score")]
    public async Task Eval_CancelledAtPhase_EndsWithCancelledMessageAndCode(string logMarker, string phase)
    {
        using var cts = new CancellationTokenSource();
        var setup = new CliSetup { OnLog = m => { if (m.Contains(logMarker, StringComparison.Ordinal)) cts.Cancel(); } };

        var run = await CliRunner.RunAsync(setup, ["eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--window", "16"], cts.Token);

        run.Logs.Should().Contain(l => l.Contains(logMarker, StringComparison.Ordinal), $"the run reached the {phase} phase");
        ShouldBeCleanCancellation(run);
    }

    [Fact]
    public async Task Prune_CancelledWhileSaving_LeavesNoFolderAtAll()
    {
        var parent = Path.Combine(fixture.Root, "cancel-save-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(parent);
        using var cts = new CancellationTokenSource();
        var setup = new CliSetup { OnLog = m => { if (m.Contains("Writing", StringComparison.Ordinal)) cts.Cancel(); } };

        var run = await CliRunner.RunAsync(setup, ["prune", "--model", fixture.ModelFolder, "--out", Path.Combine(parent, "pruned"), "--metric", "magnitude", "--layers", "1"], cts.Token);

        run.Logs.Should().Contain(l => l.Contains("Writing", StringComparison.Ordinal));
        ShouldBeCleanCancellation(run);
        Directory.GetFileSystemEntries(parent).Should().BeEmpty("neither the model, the report nor a temporary folder may be left");
    }

    [Fact]
    public async Task RunWithSignals_RepeatedSignals_CancelOnceWithoutCrashing()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var signals = new TerminationSignals(CancellationToken.None);
        var context = new CliContext
        {
            Out = output,
            Error = error,
            LoggerFactory = _ => LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug)
                .AddProvider(new SignalOnLog("Loading", signals))),
        };

        var code = await PipCli.RunWithSignalsAsync(["eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--window", "16"], context, signals);

        ShouldBeCleanCancellation(new CliRun(code, output.ToString(), error.ToString()));
        error.ToString().Should().Be("pip-prune eval: cancelled." + Environment.NewLine);
    }

    [Fact]
    public async Task RunWithSignals_CommandThatDoesNotStop_AbandonedAfterGracePeriodWithSameMessage()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var signals = new TerminationSignals(CancellationToken.None);
        using var release = new ManualResetEventSlim();
        var context = new CliContext
        {
            Out = output,
            Error = error,
            CancellationGracePeriod = TimeSpan.FromMilliseconds(200),
            // The first log line of the run signals and then blocks the command (as a step that cannot be interrupted would).
            LoggerFactory = _ => LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug)
                .AddProvider(new SignalOnLog("Loading", signals, release))),
        };

        var clock = Stopwatch.StartNew();
        var code = await PipCli.RunWithSignalsAsync(["eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--window", "16"], context, signals);
        var message = error.ToString();
        release.Set();

        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20));
        code.Should().Be(ExitCodes.Cancelled);
        message.Should().Be("pip-prune: cancelled." + Environment.NewLine);
    }

    /// <summary>
    /// The built tool, signalled twice with SIGTERM while it waits inside a command (reading its --text from a FIFO), as
    /// GNU timeout does (it signals the child and then its process group): System.CommandLine's own handler crashed here
    /// with an unhandled InvalidOperationException.
    /// </summary>
    [Fact]
    public async Task BuiltTool_TwoSigtermsInsideCommand_ExitsCleanlyWith130()
    {
        if (!OperatingSystem.IsLinux()) return; // SIGTERM and FIFOs as Linux has them
        var tool = Path.Combine(AppContext.BaseDirectory, "pip-prune.dll");
        File.Exists(tool).Should().BeTrue("the test project references Pip.Cli, so the tool is built next to the tests");
        var fifo = Path.Combine(fixture.Root, "fifo-" + Guid.NewGuid().ToString("N"));
        mkfifo(fifo, Convert.ToUInt32("600", 8)).Should().Be(0);
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { tool, "eval", "--model", fixture.ModelFolder, "--text", fifo, "--window", "16" }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        try
        {
            // Opening the FIFO for writing returns once the tool has opened it for reading: it is then inside the command.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await using var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write);
            await Task.Delay(200);
            kill(process.Id, Sigterm).Should().Be(0);
            kill(process.Id, Sigterm).Should().Be(0);
            await Task.Delay(300);
            await writer.WriteAsync("The quick brown fox jumps over the lazy dog.\n"u8.ToArray());
            await writer.DisposeAsync();
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }

        var error = await stderr;
        process.ExitCode.Should().Be(ExitCodes.Cancelled, error);
        error.Should().Contain("cancelled.").And.NotContain("Unhandled exception").And.NotContain("   at ");
        (await stdout).Should().BeEmpty();
    }

    private const int Sigterm = 15;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkfifo(string path, uint mode);

    /// <summary>Signals (twice) when a log message contains a marker; optionally then blocks until released.</summary>
    private sealed class SignalOnLog(string marker, TerminationSignals signals, ManualResetEventSlim? blockUntil = null) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(this);

        private void OnMessage(string message)
        {
            if (!message.Contains(marker, StringComparison.Ordinal)) return;
            signals.Signal();
            signals.Signal();
            blockUntil?.Wait(TimeSpan.FromSeconds(30));
        }

        public void Dispose()
        {
        }

        private sealed class Logger(SignalOnLog owner) : Microsoft.Extensions.Logging.ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
                => owner.OnMessage(formatter(state, exception));
        }
    }
}
