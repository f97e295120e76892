using System.Text.Json;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class EvalCommandTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task Eval_TinyRandomModelJson_PerplexityIsNearTheVocabularySize()
    {
        var run = await CliRunner.RunAsync("eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--window", "64", "--max-tokens", "200", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        var ppl = root.GetProperty("perplexity").GetDouble();
        double.IsFinite(ppl).Should().BeTrue();
        // Weights drawn with std 0.02 give nearly uniform predictions over the 512-token vocabulary.
        ppl.Should().BeInRange(400, 650);
        root.GetProperty("nll").GetDouble().Should().BeApproximately(Math.Log(ppl), 1e-9);
        // 200 tokens in windows of 64: [0,64) [64,128) [128,192) [192,200), each scoring all but its first token.
        root.GetProperty("tokens").GetInt64().Should().Be(3 * 63 + 7);
        root.GetProperty("windows").GetInt32().Should().Be(4);
        root.GetProperty("tokens_per_second").GetDouble().Should().BePositive();
    }

    [Fact]
    public async Task Eval_StrideLongerThanWindow_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--window", "16", "--stride", "32");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--stride");
    }

    [Fact]
    public async Task Eval_UnknownDtype_ExitsWithBadInputParseError()
    {
        var run = await CliRunner.RunAsync("eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--dtype", "int8");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("'int8' is not a dtype");
    }

    [Fact]
    public async Task Eval_CancelledToken_ExitsWithCancelled()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var run = await CliRunner.RunAsync(["eval", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--window", "16"], cancelled.Token);

        run.ExitCode.Should().Be(ExitCodes.Cancelled);
        run.Out.Should().BeEmpty();
    }
}
