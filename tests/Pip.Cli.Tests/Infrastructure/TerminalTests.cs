using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Cli.Infrastructure;

namespace Pip.Cli.Tests.Infrastructure;

public sealed class TerminalTests : IDisposable
{
    private const char Escape = '\u001b';
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-cli-terminal-tests-" + Guid.NewGuid().ToString("N"));

    public TerminalTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Run_OutputNotATerminal_IsPlainTextWithoutEscapes()
    {
        var run = await CliRunner.RunAsync(new CliSetup(), ["create-random", "--out", Path.Combine(_root, "m")]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        run.Out.Should().NotContain(Escape.ToString()).And.NotContain("╭");
        run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().Contain(l => l.StartsWith("Preset ", StringComparison.Ordinal) && l.EndsWith("tiny", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Run_Terminal_DrawsTheResultTable()
    {
        var run = await CliRunner.RunAsync(new CliSetup { Interactive = true }, ["create-random", "--out", Path.Combine(_root, "m")]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        run.Out.Should().Contain("╭").And.Contain("Preset").And.Contain("tiny").And.Contain(Escape.ToString());
    }

    [Fact]
    public async Task Run_TerminalWithJson_IsPlainParseableJson()
    {
        var run = await CliRunner.RunAsync(new CliSetup { Interactive = true }, ["create-random", "--out", Path.Combine(_root, "m"), "--json"]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        run.Out.Should().NotContain(Escape.ToString());
        using var json = JsonDocument.Parse(run.Out);
        json.RootElement.GetProperty("preset").GetString().Should().Be("tiny");
    }

    [Fact]
    public async Task Eval_Terminal_ShowsAProgressBarThenTheTable_PlainWithoutTerminal()
    {
        var model = Path.Combine(_root, "m");
        var text = Path.Combine(_root, "text.txt");
        await File.WriteAllTextAsync(text, string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 20)));
        (await CliRunner.RunAsync("create-random", "--out", model)).ExitCode.Should().Be(ExitCodes.Success);

        var terminal = await CliRunner.RunAsync(new CliSetup { Interactive = true }, ["eval", "--model", model, "--text", text, "--window", "32"]);
        var plain = await CliRunner.RunAsync(new CliSetup(), ["eval", "--model", model, "--text", text, "--window", "32"]);

        terminal.ExitCode.Should().Be(ExitCodes.Success, terminal.Error);
        terminal.Out.Should().Contain("Perplexity").And.Contain("100%").And.Contain("╭");
        terminal.Out.IndexOf("100%", StringComparison.Ordinal).Should().BeLessThan(terminal.Out.IndexOf("╭", StringComparison.Ordinal), "the table comes after the bar");
        plain.ExitCode.Should().Be(ExitCodes.Success, plain.Error);
        plain.Out.Should().NotContain(Escape.ToString()).And.NotContain("%");
        plain.Out.Should().StartWith("Model");
    }

    [Theory]
    [InlineData(true, new string[0], LogLevel.Warning)]
    [InlineData(true, new[] { "--log-level", "Debug" }, LogLevel.Debug)]
    [InlineData(false, new string[0], LogLevel.Information)]
    [InlineData(true, new[] { "--json" }, LogLevel.Information)]
    public async Task Run_Terminal_LogsOnlyWarningsUnlessALevelIsAskedFor(bool interactive, string[] extra, LogLevel expected)
    {
        LogLevel? used = null;
        using var output = new StringWriter();
        var context = new CliContext
        {
            Out = output,
            Error = TextWriter.Null,
            Interactive = interactive,
            LoggerFactory = level =>
            {
                used = level;
                return NullLoggerFactory.Instance;
            },
        };

        var code = await PipCli.RunAsync(["create-random", "--out", Path.Combine(_root, "m"), .. extra], context);

        code.Should().Be(ExitCodes.Success);
        used.Should().Be(expected);
    }

    [Fact]
    public async Task CompleteAsync_HeldBackOutput_IsWrittenInOrderWithTablesDrawn()
    {
        using var output = new StringWriter();
        var terminal = new Terminal(output, forceAnsi: false);
        terminal.Output.Write("before\n");
        ResultWriter.WriteTable(terminal.Output, [("Key", "value")]);
        terminal.Output.Write("after\n");

        output.ToString().Should().BeEmpty("nothing is written while the run lasts");
        await terminal.CompleteAsync();

        var text = output.ToString();
        text.IndexOf("before", StringComparison.Ordinal).Should().BeLessThan(text.IndexOf("Key", StringComparison.Ordinal));
        text.IndexOf("value", StringComparison.Ordinal).Should().BeLessThan(text.IndexOf("after", StringComparison.Ordinal));
        text.Should().Contain("╭");
    }

    [Fact]
    public async Task Report_AfterComplete_IsIgnored()
    {
        var terminal = new Terminal(TextWriter.Null, forceAnsi: false);
        await terminal.CompleteAsync();

        var act = () => terminal.Report("k", "late", 1, 2);

        act.Should().NotThrow();
    }
}
