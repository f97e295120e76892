using static TorchSharp.torch;

namespace Pip.Torch.Tests;

public sealed class TorchPrecisionTests
{
    [Fact]
    public void Resolve_ExplicitType_IsKept()
    {
        TorchPrecision.Resolve(ScalarType.BFloat16, ScalarType.Float32).Should().Be(ScalarType.BFloat16);
        TorchPrecision.Resolve(ScalarType.Float32, ScalarType.BFloat16).Should().Be(ScalarType.Float32);
    }

    [Fact]
    public void Resolve_Automatic_KeepsFloat32AndChoosesBetweenStoredTypeAndFloat32()
    {
        TorchPrecision.Resolve(null, ScalarType.Float32).Should().Be(ScalarType.Float32);
        TorchPrecision.IsFast(ScalarType.Float32).Should().BeTrue();
        var expected = TorchPrecision.IsFast(ScalarType.BFloat16) ? ScalarType.BFloat16 : ScalarType.Float32;
        TorchPrecision.Resolve(null, ScalarType.BFloat16).Should().Be(expected);
    }

    [Fact]
    public void CpuBFloat16Support_OnLinux_FollowsTheCpuFlags()
    {
        if (!OperatingSystem.IsLinux())
        {
            TorchPrecision.CpuBFloat16Support().Should().BeNull();
            return;
        }

        string flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal) || l.StartsWith("Features", StringComparison.Ordinal));
        bool expected = flags.Split(' ').Intersect(["avx512_bf16", "amx_bf16", "avx512bw", "bf16"]).Any();
        TorchPrecision.CpuBFloat16Support().Should().Be(expected);
        if (!expected) TorchPrecision.IsFast(ScalarType.BFloat16).Should().BeFalse("without bf16 instructions no probe can make bf16 the default");
    }

    private static Func<ScalarType, Device, PrecisionProbeShape, bool, double> Timings(double quickFloat32, double quickCandidate, double layerFloat32, double layerCandidate, List<string>? calls = null) =>
        (type, _, _, quick) =>
        {
            calls?.Add($"{type}/{(quick ? "quick" : "layer")}");
            return (type == ScalarType.Float32, quick) switch
            {
                (true, true) => quickFloat32,
                (false, true) => quickCandidate,
                (true, false) => layerFloat32,
                _ => layerCandidate,
            };
        };

    [Fact]
    public void Decide_FlagsShowNoBf16_RefusesWithoutTiming()
    {
        var calls = new List<string>();

        TorchPrecision.Decide(ScalarType.BFloat16, CPU, PrecisionProbeShape.Default, () => false, Timings(1, 1, 1, 1, calls)).Should().BeFalse();

        calls.Should().BeEmpty();
    }

    [Fact]
    public void Decide_ScalarFallback_RefusedByTheQuickProbeAlone()
    {
        var calls = new List<string>();

        // 256³: 2.0 ms in float32, 30.8 ms in bf16 (the README's AVX2 machine).
        TorchPrecision.Decide(ScalarType.BFloat16, CPU, PrecisionProbeShape.Default, () => null, Timings(2.0, 30.8, 1, 1, calls)).Should().BeFalse();

        calls.Should().NotContain(c => c.EndsWith("layer", StringComparison.Ordinal), "the layer probe would take seconds on the scalar fallback");
    }

    [Fact]
    public void Decide_FastMatmulButSlowerLayer_ChoosesFloat32()
    {
        // The issue's AVX-512-BF16 CPU: bare products faster in bf16, the model 5.8 k tokens/s in bf16 vs 7.4 k in float32.
        TorchPrecision.Decide(ScalarType.BFloat16, CPU, PrecisionProbeShape.Default, () => true, Timings(2.0, 1.0, 1 / 7.4, 1 / 5.8)).Should().BeFalse();
    }

    [Theory]
    [InlineData(10.0, 6.0, true)]
    [InlineData(10.0, 7.9, true)]
    [InlineData(10.0, 8.1, false)]
    [InlineData(10.0, 9.5, false)]
    [InlineData(10.0, 11.2, false)]
    public void Decide_LayerTimings_AcceptOnlyAClearSpeedup(double float32, double candidate, bool expected)
    {
        TorchPrecision.Decide(ScalarType.BFloat16, CPU, PrecisionProbeShape.Default, () => true, Timings(1, 1, float32, candidate)).Should().Be(expected);
    }

    [Fact]
    public void IsFast_SameShapeClass_ProbesOnce_OtherShapeProbesAgain()
    {
        var calls = new List<string>();
        var timings = Timings(1, 1, 2, 1, calls);
        var shape = new PrecisionProbeShape(77, 231); // a shape no other test probes
        var other = new PrecisionProbeShape(78, 231);

        TorchPrecision.IsFast(ScalarType.Float16, CPU, shape, () => true, timings).Should().BeTrue();
        var afterFirst = calls.Count;
        TorchPrecision.IsFast(ScalarType.Float16, CPU, shape, () => true, timings).Should().BeTrue();
        calls.Should().HaveCount(afterFirst);
        TorchPrecision.IsFast(ScalarType.Float16, CPU, other, () => true, timings);
        calls.Should().HaveCount(2 * afterFirst);
        afterFirst.Should().Be(2 + 2 * TorchPrecision.LayerRounds);
    }

    [Fact]
    public void PrecisionProbeShape_Of_CapsLargeModelsKeepingTheirMlpRatio()
    {
        var llama8b = new Pip.Checkpoints.LlamaConfig
        {
            Family = Pip.Checkpoints.DecoderFamily.Llama, VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumHiddenLayers = 32,
            NumAttentionHeads = 32, NumKeyValueHeads = 8, HeadDim = 128,
        };
        var tiny = llama8b with { HiddenSize = 32, IntermediateSize = 48, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 8 };

        PrecisionProbeShape.Of(llama8b).Should().Be(new PrecisionProbeShape(1024, 3584));
        PrecisionProbeShape.Of(llama8b with { HiddenSize = 2048, IntermediateSize = 8192 }).Should().Be(new PrecisionProbeShape(1024, 4096));
        PrecisionProbeShape.Of(tiny).Should().Be(new PrecisionProbeShape(64, 96));
    }
}
