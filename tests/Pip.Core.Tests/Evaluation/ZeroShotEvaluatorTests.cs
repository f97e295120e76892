using Pip.Evaluation;

namespace Pip.Core.Tests.Evaluation;

public sealed class ZeroShotEvaluatorTests
{
    /// <summary>Answers each request from a table keyed by its continuation; records the calls.</summary>
    private sealed class TableScorer(Dictionary<string, double> table) : ILoglikelihoodScorer
    {
        public List<IReadOnlyList<LoglikelihoodRequest>> Calls { get; } = new();

        public IReadOnlyList<LoglikelihoodResult> Score(IReadOnlyList<LoglikelihoodRequest> requests, CancellationToken cancellationToken = default)
        {
            Calls.Add(requests);
            return requests.Select(r => new LoglikelihoodResult(table[r.Context + "|" + r.Continuation], false)).ToArray();
        }
    }

    private static MultipleChoiceItem Item(string context, int gold, params string[] choices) =>
        new(choices.Select(c => new LoglikelihoodRequest(context, " " + c)).ToArray(), choices, gold);

    [Fact]
    public void ScoreItem_ContinuationLengthsDiffer_AccAndAccNormDisagree()
    {
        // "ab": -3 (-1.5 per byte); "abcdef": -4 (-0.67 per byte). The sum prefers the short one, the norm the long one.
        var item = Item("Q", 0, "ab", "abcdef");
        var score = ZeroShotEvaluator.ScoreItem(item, [-3.0, -4.0]);
        score.Prediction.Should().Be(0);
        score.NormalizedPrediction.Should().Be(1);
        score.Correct.Should().BeTrue();
        score.CorrectNormalized.Should().BeFalse();
    }

    [Fact]
    public void ScoreItem_NonAscii_BytesAndCodePointsDiffer()
    {
        // "éé" is 2 code points but 4 UTF-8 bytes; "abc" is 3 of both.
        var item = Item("Q", 0, "éé", "abc");
        ZeroShotEvaluator.Length("éé", LengthUnit.Utf8Bytes).Should().Be(4);
        ZeroShotEvaluator.Length("éé", LengthUnit.CodePoints).Should().Be(2);
        ZeroShotEvaluator.Length("😀", LengthUnit.CodePoints).Should().Be(1);
        // -3.5/4 = -0.875 > -3/3 = -1, but -3.5/2 = -1.75 < -1.
        ZeroShotEvaluator.ScoreItem(item, [-3.5, -3.0], LengthUnit.Utf8Bytes).NormalizedPrediction.Should().Be(0);
        ZeroShotEvaluator.ScoreItem(item, [-3.5, -3.0], LengthUnit.CodePoints).NormalizedPrediction.Should().Be(1);
    }

    [Fact]
    public void ScoreItem_Ties_FirstIndexWins()
    {
        var score = ZeroShotEvaluator.ScoreItem(Item("Q", 1, "ab", "cd", "ef"), [-2.0, -1.0, -1.0]);
        score.Prediction.Should().Be(1);
        score.NormalizedPrediction.Should().Be(1);
    }

    [Fact]
    public void EvaluateTask_ScorerPerItem_AggregatesAccStderrAndAccNorm()
    {
        var table = new Dictionary<string, double>
        {
            ["a| x"] = -1, ["a| yyyy"] = -2,   // acc picks 0, norm picks 1
            ["b| x"] = -5, ["b| yyyy"] = -2,   // both pick 1
            ["c| x"] = -1, ["c| yyyy"] = -9,   // both pick 0
        };
        var task = new MultipleChoiceTask("toy", [Item("a", 0, "x", "yyyy"), Item("b", 0, "x", "yyyy"), Item("c", 0, "x", "yyyy")], ReportsAccNorm: true);
        var scorer = new TableScorer(table);
        var progress = new List<ZeroShotProgress>();
        var result = ZeroShotEvaluator.EvaluateTask(task, scorer, progress: new SyncProgress(progress));

        scorer.Calls.Should().HaveCount(3);
        scorer.Calls[0].Should().Equal(task.Items[0].Requests);
        result.Task.Should().Be("toy");
        result.Count.Should().Be(3);
        result.Acc.Should().BeApproximately(2.0 / 3, 1e-12);
        // Sample standard deviation of [1, 0, 1] is √(1/3); over √3 that is 1/3.
        result.AccStderr.Should().BeApproximately(1.0 / 3, 1e-12);
        result.AccNorm.Should().BeApproximately(1.0 / 3, 1e-12);
        result.AccNormStderr.Should().BeApproximately(1.0 / 3, 1e-12);
        result.Items.Select(s => s.Prediction).Should().Equal(0, 1, 0);
        result.Items.Select(s => s.NormalizedPrediction).Should().Equal(1, 1, 0);
        progress.Select(p => p.ItemsDone).Should().Equal(1, 2, 3);
        progress.Should().AllSatisfy(p => p.ItemsTotal.Should().Be(3));
    }

    [Fact]
    public void Evaluate_SeveralTasks_AveragesAccAndAccNormWhereReported()
    {
        var table = new Dictionary<string, double> { ["a| x"] = -1, ["a| yyyy"] = -2 };
        var withNorm = new MultipleChoiceTask("t1", [Item("a", 0, "x", "yyyy")], ReportsAccNorm: true);   // acc 1, acc_norm 0
        var withoutNorm = new MultipleChoiceTask("t2", [Item("a", 1, "x", "yyyy")], ReportsAccNorm: false); // acc 0
        var report = ZeroShotEvaluator.Evaluate([withNorm, withoutNorm], new TableScorer(table));

        report.Tasks.Select(t => t.Task).Should().Equal("t1", "t2");
        report.Tasks[0].AccNorm.Should().Be(0);
        report.Tasks[1].AccNorm.Should().BeNull();
        report.Tasks[0].AccStderr.Should().BeNull(); // one item: no sample deviation
        report.AverageAcc.Should().Be(0.5);
        report.AverageAccNormOrAcc.Should().Be(0.0);
    }

    [Fact]
    public void MultipleChoiceItem_BadShape_Throws()
    {
        var one = new[] { new LoglikelihoodRequest("c", " a") };
        ((Action)(() => _ = new MultipleChoiceItem(one, ["a", "b"], 0))).Should().Throw<ArgumentException>().WithMessage("*one request per choice*");
        ((Action)(() => _ = new MultipleChoiceItem(one, ["a"], 0))).Should().Throw<ArgumentException>().WithMessage("*at least two*");
        ((Action)(() => Item("c", 2, "a", "b"))).Should().Throw<ArgumentOutOfRangeException>();
    }

    private sealed class SyncProgress(List<ZeroShotProgress> reports) : IProgress<ZeroShotProgress>
    {
        public void Report(ZeroShotProgress value) => reports.Add(value);
    }
}
