using System.Text.Json.Nodes;
using Pip.Tokenization;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests;

public sealed class TorchCausalLMTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-tests-lm-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private string Folder(string name) => Path.Combine(_root, name);

    private static IReadOnlyList<IReadOnlyList<int>> Sequences(TorchCausalLM lm) =>
        PruningFixtures.Texts.Select(t => lm.Tokenize(t)).ToArray();

    [Fact]
    public async Task ComputeLossAsync_NoSkip_EqualsTokenWeightedMeanNll()
    {
        using var lm = PruningFixtures.Create(seed: 81);
        var sequences = Sequences(lm);
        double nll = 0;
        long tokens = 0;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            foreach (var s in sequences)
            {
                var ids = tensor(s.Select(i => (long)i).ToArray(), [1, s.Count]);
                nll += nn.functional.cross_entropy(lm.Module.Logits(ids)[0, ..^1], ids[0, 1..], reduction: nn.Reduction.Sum).item<float>();
                tokens += s.Count - 1;
            }
        }

        (await lm.ComputeLossAsync(sequences)).Should().BeApproximately(nll / tokens, 1e-5);
    }

    [Theory]
    [InlineData(new[] { 1 })]
    [InlineData(new[] { 0, 3 })]
    [InlineData(new[] { 0, 1, 2, 3 })]
    public async Task ComputeLossAsync_SkipLayers_EqualsLossOfModelWithThoseLayersRemoved(int[] skip)
    {
        using var lm = PruningFixtures.Create(seed: 82, layers: 4);
        using var pruned = PruningFixtures.Create(seed: 82, layers: 4);
        pruned.RemoveLayers(skip);
        var sequences = Sequences(lm);

        var skipped = await lm.ComputeLossAsync(sequences, skip.ToHashSet());
        var removed = await pruned.ComputeLossAsync(sequences);
        var full = await lm.ComputeLossAsync(sequences);

        skipped.Should().Be(removed);
        skipped.Should().NotBe(full);
        lm.LayerCount.Should().Be(4, "skipping does not remove");
    }

    [Fact]
    public async Task ComputeLossAsync_SkipLayerOutOfRange_ThrowsNamingIt()
    {
        using var lm = PruningFixtures.Create(seed: 82);
        var act = async () => await lm.ComputeLossAsync(Sequences(lm), new HashSet<int> { 1, 3 });
        await act.Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*3*3 layers*");
    }

    [Fact]
    public async Task ComputeLossAsync_NoSequenceOfTwoTokens_Throws()
    {
        using var lm = PruningFixtures.Create(seed: 83);
        var act = async () => await lm.ComputeLossAsync([[1], []]);
        await act.Should().ThrowAsync<ArgumentException>();
    }

    [Fact]
    public void RemoveLayers_Twice_OriginalLayerIndicesAndCountsFollow()
    {
        using var lm = PruningFixtures.Create(seed: 84, layers: 5);
        var perLayer = lm.GetLayerParameterCount(0);
        var total = lm.ParameterCount;
        lm.OriginalLayerIndices.Should().Equal(0, 1, 2, 3, 4);

        lm.RemoveLayers([3, 1, 3]);
        lm.OriginalLayerIndices.Should().Equal(0, 2, 4);
        lm.LayerCount.Should().Be(3);
        lm.Config.NumHiddenLayers.Should().Be(3);
        lm.ParameterCount.Should().Be(total - 2 * perLayer);

        lm.RemoveLayers([0]);
        lm.OriginalLayerIndices.Should().Equal(2, 4);
        lm.GetLayerParameterCount(1).Should().Be(perLayer);
    }

    [Fact]
    public void RemoveLayers_OutOfRange_ThrowsAndKeepsIndices()
    {
        using var lm = PruningFixtures.Create(seed: 85, layers: 3);
        var act = () => lm.RemoveLayers([1, 3]);
        act.Should().Throw<ArgumentOutOfRangeException>();
        lm.OriginalLayerIndices.Should().Equal(0, 1, 2);
        lm.LayerCount.Should().Be(3);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void SaveThenLoad_RandomModel_RoundTripsLogitsAndTokenizerExactly(ScalarType dtype)
    {
        var first = Folder("first");
        var second = Folder("second");
        using var original = new TorchCausalLM(TinyModels.Random(PruningFixtures.Config(layers: 2, family: Pip.Checkpoints.DecoderFamily.Qwen2, tied: true), 86, dtype), null);
        original.Save(first);
        var bpe = new BpeTrainer(258, specialTokens: ["<s>", "</s>"]).Train([]);
        HfTokenizerWriter.WriteByteLevelBpe(first, bpe, "<s>", "</s>", addBosToken: true);

        using (var automatic = TorchCausalLM.Load(first))
        {
            automatic.Module.Dtype.Should().Be(TorchPrecision.Resolve(null, dtype, null, original.ModelConfig), "without a requested type the stored one is used where it is fast at the model's shapes");
        }

        using var loaded = TorchCausalLM.Load(first, dtype);
        loaded.Module.Dtype.Should().Be(dtype);
        loaded.Architecture.Should().Be("Qwen2ForCausalLM");
        loaded.SourceFolder.Should().Be(Path.GetFullPath(first));
        loaded.Save(second);
        using var again = TorchCausalLM.Load(second, dtype);

        File.ReadAllText(Path.Combine(second, "tokenizer.json")).Should().Be(File.ReadAllText(Path.Combine(first, "tokenizer.json")));
        var ids = again.Tokenize("round trip");
        ids.Should().Equal(new[] { 0 }.Concat("round trip".Select(c => c + 2)));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count]);
        var expected = original.Module.Logits(input);
        TinyModels.Same(loaded.Module.Logits(input), expected).Should().BeTrue();
        TinyModels.Same(again.Module.Logits(input), expected).Should().BeTrue();
    }

    [Fact]
    public void Save_AfterRemoveLayers_WritesFewerLayersThatLoadWithSameLogits()
    {
        var folder = Folder("pruned");
        using var lm = PruningFixtures.Create(seed: 87, layers: 4);
        lm.RemoveLayers([2]);
        lm.Save(folder, dtype: ScalarType.BFloat16);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        config["num_hidden_layers"]!.GetValue<int>().Should().Be(3);
        config["torch_dtype"]!.GetValue<string>().Should().Be("bfloat16");
        using var loaded = TorchCausalLM.Load(folder, dtype: ScalarType.Float32);
        loaded.LayerCount.Should().Be(3);
        loaded.OriginalLayerIndices.Should().Equal([0, 1, 2], "a loaded model starts a new numbering");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var rounded = new LlamaForCausalLM(lm.Config);
        rounded.LoadWeights(lm.Module.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.BFloat16)));
        var input = tensor(new long[] { 0, 40, 50, 60, 70 }, [1, 5]);
        TinyModels.Same(loaded.Module.Logits(input), rounded.Logits(input)).Should().BeTrue();
    }

    [Fact]
    public void Tokenize_WithoutTokenizer_Throws()
    {
        using var lm = new TorchCausalLM(TinyModels.Random(PruningFixtures.Config(), 1), null);
        var act = () => lm.Tokenize("x");
        act.Should().Throw<InvalidOperationException>().WithMessage("*tokenizer*");
    }

    [Fact]
    public void Load_MissingFolder_ThrowsNamingIt()
    {
        var act = () => TorchCausalLM.Load(Folder("absent"));
        act.Should().Throw<DirectoryNotFoundException>().WithMessage("*absent*");
    }
}
