using Pip.Torch.Pruning.Width;
using Pip.Torch.Streaming;
using Pip.Torch.Tests.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Streaming;

/// <summary>Width metrics give the same scores on a model streamed from its checkpoint as on the model in memory.</summary>
public sealed class StreamedWidthMetricsTests
{
    private const double Relative = 1e-4;

    private static WidthImportanceRequest Request(IWidthPrunableModel model, params int[] layers) =>
        new(model, PruningFixtures.Samples, WidthUnits.Both, layers, Seed: 3);

    private static void ShouldMatch(IReadOnlyList<IReadOnlyList<double>>? streamed, IReadOnlyList<IReadOnlyList<double>>? memory, int[] layers, string because)
    {
        streamed.Should().NotBeNull(because);
        memory.Should().NotBeNull(because);
        var s = streamed!;
        var m = memory!;
        s.Should().HaveCount(m.Count, because);
        for (int l = 0; l < m.Count; l++)
        {
            if (layers.Contains(l))
            {
                m[l].Should().NotBeEmpty(because).And.OnlyContain(x => x > 0, because);
                s[l].ShouldBeCloseTo(m[l], Relative, $"{because}, layer {l}");
            }
            else
            {
                s[l].Should().BeEmpty(because);
            }
        }
    }

    [Fact]
    public async Task WandaSpFlapAndMagnitude_Streamed_EqualInMemory()
    {
        using var f = new StreamingFixture(seed: 21);
        int[] layers = [0, 2];
        foreach (IWidthImportanceMetric metric in new IWidthImportanceMetric[] { new WandaSpWidthMetric(), new FlapWidthMetric(), new MagnitudeWidthMetric() })
        {
            var memory = await metric.ScoreAsync(Request(f.InMemory, layers));
            var streamed = await metric.ScoreAsync(Request(f.Streamed, layers));
            ShouldMatch(streamed.Heads, memory.Heads, layers, metric.Name + " heads");
            ShouldMatch(streamed.Channels, memory.Channels, layers, metric.Name + " channels");
        }

        var flapMemory = await new FlapWidthMetric().ScoreAsync(Request(f.InMemory, layers));
        var flapStreamed = await new FlapWidthMetric().ScoreAsync(Request(f.Streamed, layers));
        foreach (int l in layers)
        {
            flapStreamed.HeadInputMeans![l].ShouldBeCloseTo(flapMemory.HeadInputMeans![l], Relative, $"head input means, layer {l}");
            flapStreamed.ChannelInputMeans![l].ShouldBeCloseTo(flapMemory.ChannelInputMeans![l], Relative, $"channel input means, layer {l}");
        }
    }

    [Theory]
    [InlineData(TaylorWidthOrder.First)]
    [InlineData(TaylorWidthOrder.Second)]
    [InlineData(TaylorWidthOrder.Mix)]
    [InlineData(TaylorWidthOrder.Vector)]
    public async Task Taylor_Streamed_EqualsInMemory(TaylorWidthOrder order)
    {
        using var f = new StreamingFixture(seed: 25);
        int[] layers = [1, 3];
        var metric = new TaylorWidthMetric(order);
        var memory = await metric.ScoreAsync(Request(f.InMemory, layers));
        var streamed = await metric.ScoreAsync(Request(f.Streamed, layers));
        ShouldMatch(streamed.Heads, memory.Heads, layers, metric.Name + " heads");
        ShouldMatch(streamed.Channels, memory.Channels, layers, metric.Name + " channels");
    }

    [Fact]
    public void UnitCounts_Streamed_EqualInMemory()
    {
        using var f = new StreamingFixture(seed: 22);
        for (int l = 0; l < f.InMemory.LayerCount; l++)
        {
            foreach (var kind in new[] { WidthUnitKind.Heads, WidthUnitKind.Channels })
            {
                f.Streamed.GetUnitCount(l, kind).Should().Be(f.InMemory.GetUnitCount(l, kind));
                f.Streamed.GetUnitParameterCount(l, kind).Should().Be(f.InMemory.GetUnitParameterCount(l, kind));
            }
        }
    }

    [Fact]
    public void RemoveUnitsAndSave_Streamed_WritesTheInMemoryPrunedWeights()
    {
        using var f = new StreamingFixture(seed: 23);
        var plan = new WidthRemovalPlan
        {
            Heads = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [0], [3] = [1] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [7, 2, 5], [2] = [0], [3] = [] },
        };
        f.InMemory.RemoveUnits(plan);
        f.Streamed.RemoveUnits(plan);
        f.Streamed.ParameterCount.Should().Be(f.InMemory.ParameterCount);
        for (int l = 0; l < f.InMemory.LayerCount; l++)
        {
            f.Streamed.GetLayerParameterCount(l).Should().Be(f.InMemory.GetLayerParameterCount(l), $"layer {l}");
            f.Streamed.GetUnitCount(l, WidthUnitKind.Heads).Should().Be(f.InMemory.GetUnitCount(l, WidthUnitKind.Heads), $"layer {l}");
            f.Streamed.GetUnitCount(l, WidthUnitKind.Channels).Should().Be(f.InMemory.GetUnitCount(l, WidthUnitKind.Channels), $"layer {l}");
        }

        var memoryFolder = f.Folder + "-memory";
        var streamedFolder = f.Folder + "-streamed";
        try
        {
            f.InMemory.Save(memoryFolder, ScalarType.Float32);
            f.Streamed.Save(streamedFolder);
            using var memory = TorchCausalLM.Load(memoryFolder, ScalarType.Float32);
            using var streamed = TorchCausalLM.Load(streamedFolder, ScalarType.Float32);
            var expected = ((nn.Module)memory.Model).state_dict();
            var actual = ((nn.Module)streamed.Model).state_dict();
            actual.Keys.Should().BeEquivalentTo(expected.Keys);
            foreach (var (name, tensor) in expected)
            {
                actual[name].shape.Should().Equal(tensor.shape, name);
                actual[name].allclose(tensor, rtol: 0, atol: 0).Should().BeTrue(name);
            }
        }
        finally
        {
            foreach (var folder in new[] { memoryFolder, streamedFolder })
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }

        var sequences = PruningFixtures.Texts.Select(t => f.Streamed.Tokenize(t)).ToArray();
        f.Invoking(x => x.Streamed.Engine.SequenceLosses(sequences)).Should().Throw<InvalidOperationException>().WithMessage("*width units were removed*");
    }

    [Fact]
    public void RemoveUnits_StreamedAllOfAKindOrBiasCompensation_Refused()
    {
        using var f = new StreamingFixture(seed: 27);
        var all = new WidthRemovalPlan { Heads = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0, 1] } };
        f.Invoking(x => x.Streamed.RemoveUnits(all)).Should().Throw<ArgumentException>().WithMessage("*at least one must stay*");
        var compensated = new WidthRemovalPlan
        {
            Heads = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0] },
            HeadInputMeans = new Dictionary<int, IReadOnlyList<double>> { [0] = new double[16] },
        };
        f.Invoking(x => x.Streamed.RemoveUnits(compensated)).Should().Throw<NotSupportedException>();
        f.Streamed.GetUnitCount(0, WidthUnitKind.Heads).Should().Be(2, "a refused plan changes nothing");
    }

    [Fact]
    public void ForwardWithHooks_EachLayer_RegistersBeforeAndDisposesAfterTheCallback()
    {
        using var f = new StreamingFixture(seed: 24);
        var events = new List<string>();
        var sequences = PruningFixtures.Texts.Select(t => f.Streamed.Tokenize(t)).ToArray();
        f.Streamed.Engine.ForwardWithHooks(sequences,
            (l, _) => { events.Add($"before {l}"); return new Disposal(() => events.Add($"dispose {l}")); },
            a => events.Add($"layer {a.Layer}"));
        events.Should().Equal(Enumerable.Range(0, f.Streamed.LayerCount).SelectMany(l => new[] { $"before {l}", $"layer {l}", $"dispose {l}" }));
    }

    private sealed class Disposal(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
