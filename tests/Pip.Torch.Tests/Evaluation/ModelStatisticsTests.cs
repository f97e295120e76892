using Pip.Torch.Evaluation;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Evaluation;

public sealed class ModelStatisticsTests
{
    /// <summary>
    /// A clock that moves on every reading: by <see cref="SlowStepTicks"/> for the first <c>slowReadings</c>
    /// readings, then by one tick (1 ms). The benchmark reads it once at the start of a run and once per token.
    /// </summary>
    private sealed class SteppingClock(int slowReadings) : TimeProvider
    {
        public const long SlowStepTicks = 1000;
        private long _now;
        private int _readings;

        public override long TimestampFrequency => 1000;

        public override long GetTimestamp()
        {
            _now += _readings++ < slowReadings ? SlowStepTicks : 1;
            return _now;
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 4, false)]
    [InlineData(ScalarType.BFloat16, 2, false)]
    [InlineData(ScalarType.Float16, 2, true)]
    public void Size_CountsParametersAndBytesFromDtype(ScalarType dtype, int bytesPerElement, bool tied)
    {
        using var model = new LlamaForCausalLM(TinyModels.Config(tied: tied), dtype);
        var stats = ModelStatisticsMeter.Size(model);
        var expectedCount = model.parameters().Sum(p => p.numel());
        stats.ParameterCount.Should().Be(expectedCount).And.Be(model.CountParameters().Total);
        stats.WeightBytes.Should().Be(expectedCount * bytesPerElement);
        stats.WeightGiB.Should().Be(expectedCount * bytesPerElement / (1024.0 * 1024 * 1024));
        stats.Decoding.Should().BeNull();
        stats.TimePerOutputTokenMs.Should().BeNull();
    }

    [Fact]
    public void Size_TiedHead_CountedOnce()
    {
        using var untied = new LlamaForCausalLM(TinyModels.Config(tied: false));
        using var tied = new LlamaForCausalLM(TinyModels.Config(tied: true));
        var c = untied.Config;
        (ModelStatisticsMeter.Size(untied).ParameterCount - ModelStatisticsMeter.Size(tied).ParameterCount).Should().Be((long)c.VocabSize * c.HiddenSize);
    }

    [Fact]
    public void GreedyDecode_MatchesGenerate()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 5);
        var prompt = TinyModels.RandomTokens(6, 3);
        var ticks = 0;
        var tokens = ModelStatisticsMeter.GreedyDecode(model, prompt, 7, () => ticks++, CancellationToken.None);
        tokens.Should().Equal(model.Generate(prompt, 7));
        ticks.Should().Be(7);
    }

    [Fact]
    public void MeasureDecoding_WarmupRunsWithSlowClock_AreExcluded()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 5);
        var options = new DecodeBenchmarkOptions { NewTokens = 4, WarmupRuns = 3, MeasuredRuns = 3 };
        // Each run reads the clock 1 + 4 times: the 3 warm-up runs see 1-second steps, the measured runs 1 ms steps.
        var clock = new SteppingClock(slowReadings: 3 * (1 + options.NewTokens));
        var stats = ModelStatisticsMeter.Measure(model, TinyModels.RandomTokens(5, 9), options, clock);

        var decoding = stats.Decoding!;
        decoding.WarmupRuns.Should().HaveCount(3).And.AllSatisfy(r => r.TimePerOutputToken.Should().BeApproximately(1.0, 1e-12));
        decoding.MeasuredRuns.Should().HaveCount(3).And.AllSatisfy(r =>
        {
            r.Tokens.Should().Be(4);
            r.TimePerOutputToken.Should().BeApproximately(0.001, 1e-12);
        });
        // Had the warm-up runs been included, the median of six runs would be (1 + 1000) / 2 ms.
        decoding.MedianTimePerOutputToken.Should().BeApproximately(0.001, 1e-12);
        stats.TimePerOutputTokenMs.Should().BeApproximately(1.0, 1e-9);
        decoding.MedianTimeToFirstToken.Should().BeApproximately(0.001, 1e-12);
    }

    [Fact]
    public void MeasureDecoding_DefaultOptions_Generate128TokensPerRun()
    {
        var options = new DecodeBenchmarkOptions();
        options.NewTokens.Should().Be(128);
        options.WarmupRuns.Should().BeGreaterThan(0);
        options.MeasuredRuns.Should().BeGreaterThan(1);
    }

    [Fact]
    public void MeasureDecoding_BadPrompt_Throws()
    {
        using var model = new LlamaForCausalLM(TinyModels.Config(layers: 1));
        ((Action)(() => ModelStatisticsMeter.MeasureDecoding(model, []))).Should().Throw<ArgumentException>().WithMessage("*at least one token*");
        ((Action)(() => ModelStatisticsMeter.MeasureDecoding(model, [61]))).Should().Throw<ArgumentException>().WithMessage("*vocabulary*");
        ((Action)(() => ModelStatisticsMeter.MeasureDecoding(model, [1], new DecodeBenchmarkOptions { NewTokens = 0 }))).Should().Throw<ArgumentOutOfRangeException>();
    }
}
