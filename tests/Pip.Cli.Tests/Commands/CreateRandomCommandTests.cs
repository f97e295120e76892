using System.Text.Json;
using Pip.Checkpoints;
using Pip.Tokenization;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class CreateRandomCommandTests(TinyModelFixture fixture)
{
    [Fact]
    public void CreateRandom_TinyPreset_WritesLoadableCheckpointWithByteTokenizer()
    {
        fixture.Created.ExitCode.Should().Be(ExitCodes.Success, fixture.Created.Error);
        using var json = JsonDocument.Parse(fixture.Created.Out);
        json.RootElement.GetProperty("preset").GetString().Should().Be("tiny");
        json.RootElement.GetProperty("tokenizer_tokens").GetInt32().Should().Be(258);

        var config = LlamaConfigSerializer.Load(Path.Combine(fixture.ModelFolder, "config.json"));
        config.NumHiddenLayers.Should().Be(json.RootElement.GetProperty("layers").GetInt32());
        config.TorchDtype.Should().Be("float32");
        var tokenizer = HfTokenizer.Load(fixture.ModelFolder);
        tokenizer.BosTokenId.Should().Be(256).And.Be(config.BosTokenId);
        tokenizer.EosTokenId.Should().Be(257);
        tokenizer.Encode("héllo").Should().Equal(256, 'h', 0xC3, 0xA9, 'l', 'l', 'o');
        Directory.GetFileSystemEntries(fixture.Root, ".tiny.pip-*").Should().BeEmpty("the folder is written atomically, through a temporary sibling");
    }

    [Fact]
    public async Task CreateRandom_ExistingFolderWithoutOverwrite_ExitsWithBadInputAndKeepsIt()
    {
        var folder = Path.Combine(fixture.Root, "existing");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "keep.txt"), "mine");

        var refused = await CliRunner.RunAsync("create-random", "--out", folder);
        var replaced = await CliRunner.RunAsync("create-random", "--out", folder, "--overwrite");

        refused.ExitCode.Should().Be(ExitCodes.BadInput);
        refused.Error.Should().Contain(folder).And.Contain("--overwrite").And.NotContain(" at ");
        replaced.ExitCode.Should().Be(ExitCodes.Success, replaced.Error);
        File.Exists(Path.Combine(folder, "keep.txt")).Should().BeFalse();
        File.Exists(Path.Combine(folder, "model.safetensors")).Should().BeTrue();
    }

    [Fact]
    public async Task CreateRandom_TokenizerCorpus_TrainsBpeThatRoundTrips()
    {
        var folder = Path.Combine(fixture.Root, "trained");
        var run = await CliRunner.RunAsync("create-random", "--out", folder, "--tokenizer-corpus", fixture.TextFile, "--tokenizer-vocab-size", "300", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        json.RootElement.GetProperty("tokenizer_merges").GetInt32().Should().Be(300 - 258);
        var tokenizer = HfTokenizer.Load(folder);
        var text = await File.ReadAllTextAsync(fixture.TextFile);
        var ids = tokenizer.Encode(text);
        ids.Length.Should().BeLessThan((int)(text.Length * 0.6), "the merges learned on this repetitive text compress it (bytes alone take one token each)");
        tokenizer.Decode(ids).Should().Be(text);
    }

    [Fact]
    public async Task CreateRandom_MissingCorpus_ExitsWithBadInputNamingFile()
    {
        var corpus = Path.Combine(fixture.Root, "no-such-corpus.txt");
        var run = await CliRunner.RunAsync("create-random", "--out", Path.Combine(fixture.Root, "never"), "--tokenizer-corpus", corpus);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(corpus);
        Directory.Exists(Path.Combine(fixture.Root, "never")).Should().BeFalse();
    }

    [Fact]
    public async Task CreateRandom_LayersOverride_WritesThatManyLayers()
    {
        var folder = Path.Combine(fixture.Root, "two-layers");

        var run = await CliRunner.RunAsync("create-random", "--out", folder, "--preset", "tiny", "--layers", "2", "--dtype", "bfloat16", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        var config = LlamaConfigSerializer.Load(Path.Combine(folder, "config.json"));
        config.NumHiddenLayers.Should().Be(2);
        config.TorchDtype.Should().Be("bfloat16");
        using var weights = CheckpointFolder.Open(folder);
        weights.TensorNames.Should().Contain("model.layers.1.mlp.down_proj.weight").And.NotContain(n => n.StartsWith("model.layers.2.", StringComparison.Ordinal));
        weights.GetInfo("model.layers.1.mlp.down_proj.weight").DType.Should().Be(SafeTensorDType.BF16);
    }

    [Fact]
    public async Task CreateRandom_Llama3Presets_InHelpAndZeroLayersRefused()
    {
        var help = await CliRunner.RunAsync("create-random", "--help");
        var zero = await CliRunner.RunAsync("create-random", "--out", Path.Combine(fixture.Root, "zero"), "--layers", "0");

        help.Out.Should().Contain("llama3-8b").And.Contain("llama3-70b").And.Contain("--layers");
        zero.ExitCode.Should().Be(ExitCodes.BadInput);
        Directory.Exists(Path.Combine(fixture.Root, "zero")).Should().BeFalse();
    }
}
