using System.Text.Json;
using Pip.Torch;
using Pip.Torch.Models;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class GenerateCommandTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task Generate_TinyModel_GivesTheGreedyContinuation()
    {
        var json = await CliRunner.RunAsync("generate", "--model", fixture.ModelFolder, "--prompt", "The fox", "--max-new-tokens", "5", "--json");
        var text = await CliRunner.RunAsync("generate", "--model", fixture.ModelFolder, "--prompt", "The fox", "--max-new-tokens", "5");

        json.ExitCode.Should().Be(ExitCodes.Success, json.Error);
        using var doc = JsonDocument.Parse(json.Out);
        var generated = doc.RootElement.GetProperty("generated_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        using var model = TorchCausalLM.Load(fixture.ModelFolder);
        var expected = model.Module.Generate(model.Tokenize("The fox"), 5, model.Tokenizer!.EosTokenId);
        generated.Should().Equal(expected);
        doc.RootElement.GetProperty("prompt_tokens").GetInt32().Should().Be(8, "BOS and 7 bytes");
        text.ExitCode.Should().Be(ExitCodes.Success, text.Error);
        text.Out.Should().Be("The fox" + model.Tokenizer.Decode(expected) + Environment.NewLine);
    }
}
