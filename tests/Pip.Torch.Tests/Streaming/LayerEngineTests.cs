using Pip.Torch.Streaming;
using Pip.Torch.Tests.Pruning;
using static Pip.Torch.Tests.Pruning.PruningFixtures;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Streaming;

/// <summary>The engine's public hooks: a metric written against them runs in memory and streamed alike.</summary>
public sealed class LayerEngineTests
{
    /// <summary>A user metric: the diagonal Fisher information of each layer, Σ over samples and weights of (∂L/∂w)².</summary>
    private static double[] DiagonalFisher(LayerEngine engine, IReadOnlyList<IReadOnlyList<int>> sequences)
    {
        var scores = new double[engine.LayerCount];
        engine.Gradients(sequences.Select(LossCombination.Single).ToArray(), layer =>
        {
            foreach (var g in layer.Gradients)
            {
                using var squared = g.to_type(ScalarType.Float64).square().sum();
                scores[layer.Layer] += squared.item<double>();
            }
        });
        return scores;
    }

    [Fact]
    public void Gradients_UserFisherMetric_StreamedEqualsInMemoryAndPlainBackward()
    {
        using var f = new StreamingFixture(seed: 31, headChunkBytes: StreamingFixture.SmallHeadChunk);
        var sequences = Texts.Select(t => f.InMemory.Tokenize(t)).ToArray();
        var memory = DiagonalFisher(LayerEngine.For(f.InMemory), sequences);
        var streamed = DiagonalFisher(LayerEngine.For(f.Streamed), sequences);
        var reference = Enumerable.Range(0, f.InMemory.LayerCount)
            .Select(l => sequences.Sum(s => LayerGradients(f.InMemory.Module, s)[l].Sum(g => g * g))).ToArray();
        memory.ShouldBeCloseTo(reference, 1e-4);
        streamed.ShouldBeCloseTo(reference, 1e-4);
    }

    [Fact]
    public void Gradients_SignedCombination_EqualsDifferenceOfSeparateGradients()
    {
        using var f = new StreamingFixture(seed: 33);
        var a = f.InMemory.Tokenize(Texts[0]);
        var b = f.InMemory.Tokenize(TwinSets[0][0]);
        var expected = LayerGradients(f.InMemory.Module, a).Zip(LayerGradients(f.InMemory.Module, b), (x, y) => Subtract(x, y).Select(v => 0.5 * v).ToArray()).ToArray();
        var actual = new double[f.InMemory.LayerCount][];
        f.Streamed.Engine.Gradients([new LossCombination([a, b], [0.5, -0.5])], layer =>
            actual[layer.Layer] = layer.Gradients.SelectMany(g => g.to_type(ScalarType.Float64).flatten().data<double>().ToArray()).ToArray());
        for (int l = 0; l < actual.Length; l++)
        {
            double scale = expected[l].Max(Math.Abs);
            actual[l].Zip(expected[l], (x, y) => Math.Abs(x - y)).Max().Should().BeLessThan(1e-4 * scale, $"layer {l}");
        }
    }

    [Fact]
    public void Forward_InputsAndOutputs_ChainAndMatchBothModes()
    {
        using var f = new StreamingFixture(seed: 35);
        var sequences = Texts.Select(t => f.InMemory.Tokenize(t)).ToArray();
        var memory = new List<double>();
        var streamed = new List<double>();
        Tensor? previous = null;
        LayerEngine.For(f.InMemory).Forward(sequences, layer =>
        {
            memory.Add((layer.Output * layer.TokenMask.unsqueeze(-1)).abs().sum().item<float>());
            if (previous is not null) TorchSharp.torch.allclose(previous, layer.Input).Should().BeTrue("a layer's input is the previous layer's output");
            previous?.Dispose();
            previous = layer.Output.clone().DetachFromDisposeScope();
            layer.Lengths.Should().Equal(sequences.Select(s => s.Count));
        });
        previous?.Dispose();
        f.Streamed.Engine.Forward(sequences, layer => streamed.Add((layer.Output * layer.TokenMask.unsqueeze(-1)).abs().sum().item<float>()));
        streamed.ShouldBeCloseTo(memory, 1e-5);
        memory.Should().HaveCount(f.InMemory.LayerCount);
    }

    [Fact]
    public void For_UnknownModel_ThrowsNotSupportedNamingTheTypes()
    {
        var act = () => LayerEngine.For(new NotTorch());
        act.Should().Throw<NotSupportedException>().WithMessage("*TorchCausalLM*StreamedCausalLM*NotTorch*");
    }

    [Fact]
    public void SequenceLosses_SkipLayerOutOfRange_Throws()
    {
        using var f = new StreamingFixture(seed: 37);
        var act = () => f.Streamed.Engine.SequenceLosses([f.InMemory.Tokenize(Texts[0])], new HashSet<int> { 9 });
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*9*");
    }

    private sealed class NotTorch : IPrunableModel
    {
        public string Architecture => "x";

        public int LayerCount => 1;

        public long ParameterCount => 1;

        public IReadOnlyList<int> OriginalLayerIndices => [0];

        public long GetLayerParameterCount(int layer) => 1;

        public IReadOnlyList<int> Tokenize(string text) => [];

        public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default) => ValueTask.FromResult(0.0);

        public void RemoveLayers(IReadOnlyCollection<int> layers) { }
    }
}
