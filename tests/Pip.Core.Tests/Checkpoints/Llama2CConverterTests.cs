using Pip.Checkpoints;
using Pip.Tokenization;
using static Pip.Core.Tests.Checkpoints.Llama2CFixtures;

namespace Pip.Core.Tests.Checkpoints;

public sealed class Llama2CConverterTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Convert_BundledStories260KSource_ReproducesTheBundledFolder()
    {
        var output = Path.Combine(_dir.Path, "out");

        var result = Llama2CConverter.Convert(Stories260KSource("stories260K.bin"), Stories260KSource("tok512.bin"), output);

        result.ParameterCount.Should().Be(260_032);
        (result.TokenizerTokens, result.Config.NumHiddenLayers).Should().Be((512, 5));
        Directory.GetFiles(output).Select(Path.GetFileName).Should().BeEquivalentTo(
            "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json");
        foreach (var file in new[] { "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            File.ReadAllText(Path.Combine(output, file)).Should().Be(File.ReadAllText(Path.Combine(Stories260KFolder, file)), file);
        using var converted = SafeTensorsFile.Open(Path.Combine(output, "model.safetensors"));
        using var bundled = SafeTensorsFile.Open(Path.Combine(Stories260KFolder, "model.safetensors"));
        converted.Tensors.Select(t => t.Name).Should().BeEquivalentTo(bundled.Tensors.Select(t => t.Name));
        foreach (var tensor in bundled.Tensors)
            converted.GetBytes(tensor.Name).SequenceEqual(bundled.GetBytes(tensor.Name)).Should().BeTrue(tensor.Name);
    }

    [Fact]
    public void Convert_SentencePieceModelTokenizer_WritesTheSameTokenizerAsTheBinExport()
    {
        var output = Path.Combine(_dir.Path, "out");

        Llama2CConverter.Convert(Stories260KSource("stories260K.bin"), Stories260KSource("tok512.model"), output);

        File.ReadAllText(Path.Combine(output, "tokenizer.json")).Should().Be(File.ReadAllText(Path.Combine(Stories260KFolder, "tokenizer.json")));
    }

    [Fact]
    public void Convert_TinyUntiedModel_LoadsBackAsACheckpointFolderWithAnLmHead()
    {
        var output = Path.Combine(_dir.Path, "out");
        var model = WriteModel(_dir.File("m.bin"), vocab: 8, untied: true);
        var tokenizer = WriteTokenizer(_dir.File("tok.bin"), [.. SixTokens.Take(3), (" ", -1), ("a", -2), ("b", -3), (" a", -4), (" ab", -5)]);

        Llama2CConverter.Convert(model, tokenizer, output);

        using var folder = CheckpointFolder.Open(output);
        folder.LoadConfig().TieWordEmbeddings.Should().BeFalse();
        folder.Contains("lm_head.weight").Should().BeTrue();
        var hf = HfTokenizer.Load(output);
        (hf.BosTokenId, hf.EosTokenId, hf.AddBosByDefault).Should().Be((1, 2, true));
        hf.Encode("ab a").Should().Equal(1, 7, 6);
        hf.Encode("ba").Should().Equal(1, 3, 5, 4); // no merge makes "▁b" or "ba"
        hf.Decode([1, 7, 6]).Should().Be("ab a");
    }

    [Fact]
    public void Convert_TokenizerOfAnotherSize_ThrowsAndWritesNothing()
    {
        var output = Path.Combine(_dir.Path, "out");
        var model = WriteModel(_dir.File("m.bin"), vocab: 7);
        var tokenizer = WriteTokenizer(_dir.File("tok.bin"), SixTokens);

        var act = () => Llama2CConverter.Convert(model, tokenizer, output);

        act.Should().Throw<CheckpointFormatException>().Which.FilePath.Should().Be(tokenizer);
        Directory.Exists(output).Should().BeFalse();
        Directory.GetDirectories(_dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void Convert_ExistingFolder_IsRefusedUnlessOverwriteAndThenReplaced()
    {
        var output = _dir.Sub("out");
        File.WriteAllText(Path.Combine(output, "mine.txt"), "keep");
        var model = WriteModel(_dir.File("m.bin"));
        var tokenizer = WriteTokenizer(_dir.File("tok.bin"), SixTokens);

        var act = () => Llama2CConverter.Convert(model, tokenizer, output);

        act.Should().Throw<IOException>();
        File.ReadAllText(Path.Combine(output, "mine.txt")).Should().Be("keep");
        Llama2CConverter.Convert(model, tokenizer, output, overwrite: true);
        File.Exists(Path.Combine(output, "mine.txt")).Should().BeFalse();
        File.Exists(Path.Combine(output, "model.safetensors")).Should().BeTrue();
    }
}
