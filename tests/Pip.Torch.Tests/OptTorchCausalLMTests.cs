using System.Text.Json.Nodes;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests;

/// <summary><see cref="TorchCausalLM"/> with OPT models: loading by model_type, saving, depth pruning, metrics.</summary>
public sealed class OptTorchCausalLMTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-tests-opt-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private string Folder(string name) => Path.Combine(_root, name);

    internal static TorchCausalLM Create(long seed, int layers = 3, bool preNorm = true, int? wordEmbedProjDim = null) =>
        new(TinyOptModels.Random(TinyOptModels.Config(layers, preNorm, wordEmbedProjDim, vocab: 258), seed), PruningFixtures.Tokenizer);

    private static Tensor Ids(IReadOnlyList<int> tokens) => tensor(tokens.Select(i => (long)i).ToArray(), [1, tokens.Count]);

    [Theory]
    [InlineData(true, null)]
    [InlineData(false, 16)]
    public void SaveThenLoad_OptModel_WritesOptFolderAndReloadsIdenticalLogits(bool preNorm, int? projection)
    {
        var folder = Folder("opt");
        using var lm = Create(seed: 3, preNorm: preNorm, wordEmbedProjDim: projection);
        lm.Architecture.Should().Be("OPTForCausalLM");
        lm.Save(folder);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        ((string)json["model_type"]!).Should().Be("opt");
        ((string)json["architectures"]![0]!).Should().Be("OPTForCausalLM");
        ((bool)json["do_layer_norm_before"]!).Should().Be(preNorm);
        ((int)json["word_embed_proj_dim"]!).Should().Be(projection ?? 32);
        json.ContainsKey("head_dim").Should().BeFalse("a standard OPT checkpoint derives head_dim");
        using (var file = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors")))
            file.Tensors.Select(t => t.Name).Should().Contain("model.decoder.embed_positions.weight").And.NotContain("lm_head.weight");

        using var loaded = TorchCausalLM.Load(folder);
        loaded.Model.Should().BeOfType<OptForCausalLM>();
        loaded.ModelConfig.Should().BeOfType<OptConfig>();
        var act = () => loaded.Module;
        act.Should().Throw<InvalidOperationException>().WithMessage("*OPTForCausalLM*");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = Ids(lm.Tokenize("the cat sat on the mat"));
        TinyModels.Same(loaded.Model.Logits(ids), lm.Model.Logits(ids)).Should().BeTrue();
    }

    [Fact]
    public void RemoveLayers_ThenSaveAndLoad_KeepsLogitsAndLayerCount()
    {
        var folder = Folder("pruned");
        using var lm = Create(seed: 4, layers: 4);
        lm.RemoveLayers([1, 2]);
        lm.OriginalLayerIndices.Should().Equal(0, 3);
        lm.Save(folder);

        using var loaded = TorchCausalLM.Load(folder, ScalarType.Float32);
        loaded.LayerCount.Should().Be(2);
        loaded.ParameterCount.Should().Be(lm.ParameterCount);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = Ids(lm.Tokenize("a host of birds"));
        TinyModels.Same(loaded.Model.Logits(ids), lm.Model.Logits(ids)).Should().BeTrue();
    }

    [Fact]
    public async Task ComputeLossAsync_SkippingLayers_EqualsLossOfDepthPrunedModel()
    {
        using var lm = Create(seed: 5, layers: 3);
        using var pruned = Create(seed: 5, layers: 3);
        pruned.RemoveLayers([1]);
        IReadOnlyList<IReadOnlyList<int>> sequences = PruningFixtures.Texts.Select(t => lm.Tokenize(t)).ToArray();

        var skipped = await lm.ComputeLossAsync(sequences, new HashSet<int> { 1 });
        var direct = await pruned.ComputeLossAsync(sequences);

        skipped.Should().BeApproximately(direct, 1e-6);
        skipped.Should().NotBeApproximately(await lm.ComputeLossAsync(sequences), 1e-4, "skipping a layer changes the loss");
    }

    [Fact]
    public async Task PertImport_OptModel_EqualsSeparateBackwardPassesPerPair()
    {
        using var lm = Create(seed: 11);
        var opt = (OptForCausalLM)lm.Model;
        var metric = new PerturbationImportanceMetric(TestNorm.L2);

        var scores = await metric.ScoreAsync(PruningFixtures.Request(lm, 0));

        var expected = new double[lm.LayerCount];
        for (var i = 0; i < PruningFixtures.Texts.Length; i++)
        {
            var g = LayerGradients(opt, lm.Tokenize(PruningFixtures.Texts[i]));
            var g2 = LayerGradients(opt, lm.Tokenize(PruningFixtures.TwinSets[0][i]));
            for (var l = 0; l < expected.Length; l++)
                expected[l] += TestNorm.L2.Of(PruningFixtures.Subtract(g[l], g2[l])) / g[l].Length / PruningFixtures.Texts.Length;
        }
        expected.Should().OnlyContain(v => v > 0);
        scores.Scores.ShouldBeCloseTo(expected, 1e-4);
        foreach (var (name, p) in opt.named_parameters())
        {
            using var grad = p.grad;
            grad.Should().BeNull($"{name} must have no .grad");
        }
    }

    [Fact]
    public async Task BlockInfluence_OptModel_EqualsCosineOfHiddenStates()
    {
        using var lm = Create(seed: 12);
        var scores = await new BlockInfluenceMetric().ScoreAsync(PruningFixtures.Request(lm));

        var sums = new double[lm.LayerCount];
        long tokens = 0;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            foreach (var text in PruningFixtures.Texts)
            {
                var ids = lm.Tokenize(text);
                using var output = lm.Model.call(new CausalLMInput(Ids(ids)) { OutputHiddenStates = true });
                for (var l = 0; l < sums.Length; l++)
                    sums[l] += nn.functional.cosine_similarity(output.HiddenStates![l], output.HiddenStates[l + 1], dim: -1).sum().item<float>();
                tokens += ids.Count;
            }
        }
        scores.Scores.ShouldBeCloseTo(sums.Select(s => 1 - s / tokens).ToArray(), 1e-4);
    }

    /// <summary>One full forward and backward pass of the mean next-token loss; each layer's gradients flattened.</summary>
    private static double[][] LayerGradients(OptForCausalLM model, IReadOnlyList<int> tokens)
    {
        model.zero_grad();
        double[][] result;
        using (var scope = NewDisposeScope())
        {
            var ids = Ids(tokens);
            var logits = model.Logits(ids);
            nn.functional.cross_entropy(logits[0, ..^1], ids[0, 1..]).backward();
            result = model.Layers.Select(layer => layer.parameters().SelectMany(p =>
            {
                using var g = p.grad ?? throw new InvalidOperationException("A layer parameter received no gradient.");
                return g.to_type(ScalarType.Float64).flatten().data<double>().ToArray();
            }).ToArray()).ToArray();
        }
        model.zero_grad();
        return result;
    }
}
