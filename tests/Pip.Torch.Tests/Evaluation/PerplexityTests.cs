using Pip.Torch.Evaluation;
using Pip.Torch.Tests.Models;

namespace Pip.Torch.Tests.Evaluation;

public sealed class PerplexityTests
{
    private sealed class ListProgress : IProgress<PerplexityProgress>
    {
        public List<PerplexityProgress> Reports { get; } = new();
        public void Report(PerplexityProgress value) => Reports.Add(value);
    }

    [Fact]
    public void PlanWindows_NonOverlapping_Examples()
    {
        Perplexity.PlanWindows(10, 4).Should().Equal(new EvaluationWindow(0, 4, 1), new EvaluationWindow(4, 8, 5), new EvaluationWindow(8, 10, 9));
        // A last window of one token predicts nothing and is left out.
        Perplexity.PlanWindows(9, 4).Should().Equal(new EvaluationWindow(0, 4, 1), new EvaluationWindow(4, 8, 5));
        Perplexity.PlanWindows(1, 4).Should().BeEmpty();
        Perplexity.PlanWindows(0, 4).Should().BeEmpty();
    }

    [Fact]
    public void PlanWindows_Strided_MatchesHuggingFaceLoop()
    {
        Perplexity.PlanWindows(10, 4, 2).Should().Equal(
            new EvaluationWindow(0, 4, 1), new EvaluationWindow(2, 6, 4), new EvaluationWindow(4, 8, 6), new EvaluationWindow(6, 10, 8));
        Perplexity.PlanWindows(11, 4, 3).Should().Equal(
            new EvaluationWindow(0, 4, 1), new EvaluationWindow(3, 7, 4), new EvaluationWindow(6, 10, 7), new EvaluationWindow(9, 11, 10));
    }

    [Fact]
    public void PlanWindows_AllSizes_ScoreEveryTokenOnceExceptWindowStarts()
    {
        for (var n = 0; n <= 40; n++)
            for (var length = 2; length <= 9; length++)
            {
                var windows = Perplexity.PlanWindows(n, length);
                var scored = Scored(n, windows);
                var starts = windows.Select(w => w.Start).ToHashSet();
                for (var t = 0; t < n; t++)
                {
                    // Each token is predicted once unless it opens a window (or is the lone last token).
                    var expected = starts.Contains(t) || t % length == 0 ? 0 : 1;
                    scored[t].Should().Be(expected, $"n={n} L={length} t={t}");
                }
                windows.All(w => w.Length <= length && w.Length >= 2 && w.ScoredFrom == w.Start + 1).Should().BeTrue();

                for (var stride = 1; stride <= length; stride++)
                {
                    var strided = Perplexity.PlanWindows(n, length, stride);
                    var counts = Scored(n, strided);
                    if (stride == length) strided.Should().Equal(windows);
                    else
                        for (var t = 0; t < n; t++) counts[t].Should().Be(t == 0 ? 0 : 1, $"n={n} L={length} S={stride} t={t}");
                    strided.All(w => w.Length <= length && w.ScoredFrom > w.Start && w.End > w.ScoredFrom).Should().BeTrue();
                    strided.Skip(1).All(w => w.ScoredCount <= stride).Should().BeTrue();
                    for (var i = 1; i < strided.Count; i++) strided[i].Start.Should().Be(strided[i - 1].Start + stride);
                }
            }
    }

    [Fact]
    public void PlanWindows_BadArguments_Throw()
    {
        ((Action)(() => Perplexity.PlanWindows(10, 1))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => Perplexity.PlanWindows(10, 4, 0))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => Perplexity.PlanWindows(10, 4, 5))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => Perplexity.PlanWindows(-1, 4))).Should().Throw<ArgumentOutOfRangeException>();
    }

    private static int[] Scored(int n, IReadOnlyList<EvaluationWindow> windows)
    {
        var counts = new int[n];
        foreach (var w in windows)
            for (var t = w.ScoredFrom; t < w.End; t++) counts[t]++;
        return counts;
    }

    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void Evaluate_TinyModel_EqualsScalarReference(int? stride)
    {
        var config = TinyModels.Config(layers: 2);
        using var model = TinyModels.Random(config, seed: 17);
        var reference = new ScalarLlamaReference(config, model.NamedWeights());
        var tokens = TinyModels.RandomTokens(11, 3);
        const int L = 4;

        // Independent windowing: fixed chunks, or Hugging Face's loop written out.
        double sum = 0;
        var count = 0;
        var windows = 0;
        if (stride is null)
        {
            for (var start = 0; start + 1 < tokens.Length; start += L)
            {
                var window = tokens[start..Math.Min(start + L, tokens.Length)];
                sum += reference.WindowNllSum(window, 1);
                count += window.Length - 1;
                windows++;
            }
        }
        else
        {
            var previousEnd = 0;
            for (var begin = 0; begin < tokens.Length; begin += stride.Value)
            {
                var end = Math.Min(begin + L, tokens.Length);
                var target = end - previousEnd;
                var window = tokens[begin..end];
                var from = Math.Max(window.Length - target, 1);
                sum += reference.WindowNllSum(window, from);
                count += window.Length - from;
                windows++;
                previousEnd = end;
                if (end == tokens.Length) break;
            }
        }

        var progress = new ListProgress();
        var result = Perplexity.Evaluate(model, tokens, L, stride, progress);

        result.TokenCount.Should().Be(count);
        result.Windows.Should().Be(windows);
        result.Nll.Should().BeApproximately(sum / count, 1e-5);
        result.Perplexity.Should().Be(Math.Exp(result.Nll));
        result.Nll.Should().BeGreaterThan(0.5, "a random model is far from certain");
        progress.Reports.Should().HaveCount(windows);
        progress.Reports[^1].Should().Be(new PerplexityProgress(windows, windows, count, result.Nll));
    }

    [Fact]
    public void EvaluateSequences_TwoSequences_AveragesOverAllTokens()
    {
        var config = TinyModels.Config(layers: 1);
        using var model = TinyModels.Random(config, seed: 5);
        var a = TinyModels.RandomTokens(7, 1);
        var b = TinyModels.RandomTokens(5, 2);
        var ra = Perplexity.Evaluate(model, a, 4);
        var rb = Perplexity.Evaluate(model, b, 4);

        var both = Perplexity.EvaluateSequences(model, new[] { a, b, new[] { 3 } }, 4);

        both.TokenCount.Should().Be(ra.TokenCount + rb.TokenCount);
        both.Windows.Should().Be(ra.Windows + rb.Windows);
        both.Nll.Should().BeApproximately((ra.Nll * ra.TokenCount + rb.Nll * rb.TokenCount) / both.TokenCount, 1e-9);
    }

    [Fact]
    public void Evaluate_BadInputOrCancelled_Throws()
    {
        using var model = new Pip.Torch.Models.LlamaForCausalLM(TinyModels.Config(layers: 1));
        ((Action)(() => Perplexity.Evaluate(model, new[] { 1 }, 4))).Should().Throw<ArgumentException>().WithMessage("*shorter than 2*");
        ((Action)(() => Perplexity.Evaluate(model, new[] { 1, 99 }, 4))).Should().Throw<ArgumentException>().WithMessage("*99*");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        ((Action)(() => Perplexity.Evaluate(model, new[] { 1, 2, 3 }, 4, cancellationToken: cts.Token))).Should().Throw<OperationCanceledException>();
    }
}
