using Pip.Torch.Pruning.Width;
using Pip.Torch.Streaming;
using Pip.Torch.Tests.Pruning;

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
    public void RemoveUnits_Streamed_ThrowsNotSupported()
    {
        using var f = new StreamingFixture(seed: 23);
        var plan = new WidthRemovalPlan { Heads = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0] } };
        f.Invoking(x => x.Streamed.RemoveUnits(plan)).Should().Throw<NotSupportedException>().WithMessage("*in memory*");
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
