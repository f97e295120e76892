using Pip.Evaluation;
using Pip.Torch.Evaluation;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning;

namespace Pip.Torch.Tests.Evaluation;

public sealed class CorpusPerplexityTests
{
    private static TokenizedCorpus Corpus(int count) =>
        new("test", TinyModels.RandomTokens(count, seed: 3, vocab: 258), new PerplexityText("test", "", "/data/test.txt", 1, "none"));

    [Fact]
    public void EvaluatedTokens_NonOverlapping_KeepsWholeWindowsOnly()
    {
        var tokens = Enumerable.Range(0, 70).ToArray();

        CorpusPerplexity.EvaluatedTokens(tokens, new CorpusWindowing { Window = 16 }).Should().Equal(tokens.Take(64));
        CorpusPerplexity.EvaluatedTokens(tokens, new CorpusWindowing { Window = 16, DropPartialWindow = false }).Should().Equal(tokens);
        CorpusPerplexity.EvaluatedTokens(tokens, new CorpusWindowing { Window = 16, Stride = 8 }).Should().Equal(tokens, "strided windows cover every token");
        CorpusPerplexity.EvaluatedTokens(tokens, new CorpusWindowing { Window = 10 }).Should().BeSameAs(tokens, "70 tokens are 7 whole windows");
    }

    [Fact]
    public void Evaluate_DefaultDropsPartialWindow_EqualsPerplexityOfTheWholeWindows()
    {
        using var model = PruningFixtures.Create(seed: 5, layers: 2);
        var corpus = Corpus(70);

        var result = CorpusPerplexity.Evaluate(model.Module, corpus, new CorpusWindowing { Window = 16 });

        var expected = Perplexity.Evaluate(model.Module, corpus.Tokens.Take(64).ToArray(), 16);
        result.Perplexity.Should().BeApproximately(expected.Perplexity, 1e-5 * expected.Perplexity);
        result.Windows.Should().Be(4);
        result.TokenCount.Should().Be(4 * 15);
    }

    [Theory]
    [InlineData(1, null, true)]
    [InlineData(3, null, false)]
    [InlineData(4, 6, false)]
    [InlineData(64, 5, false)]
    public void Evaluate_BatchedWindows_EqualOneWindowAtATime(int batch, int? stride, bool drop)
    {
        using var model = PruningFixtures.Create(seed: 6, layers: 2);
        var corpus = Corpus(75);
        var windowing = new CorpusWindowing { Window = 16, Stride = stride, DropPartialWindow = drop, BatchSize = batch };
        var reports = new List<PerplexityProgress>();

        var result = CorpusPerplexity.Evaluate(model.Module, corpus, windowing, new SyncProgress(reports.Add));

        var expected = Perplexity.Evaluate(model.Module, CorpusPerplexity.EvaluatedTokens(corpus.Tokens, windowing), 16, stride);
        result.Nll.Should().BeApproximately(expected.Nll, 1e-6 * expected.Nll);
        result.TokenCount.Should().Be(expected.TokenCount);
        result.Windows.Should().Be(expected.Windows);
        reports.Last().WindowsDone.Should().Be(expected.Windows);
        reports.Last().TokensScored.Should().Be(expected.TokenCount);
        reports.Count.Should().BeGreaterThanOrEqualTo((int)Math.Ceiling(expected.Windows / (double)batch));
    }

    [Fact]
    public void Evaluate_TokenOutsideVocabulary_Throws()
    {
        using var model = PruningFixtures.Create(seed: 5, layers: 2);
        var corpus = Corpus(40) with { Tokens = [.. Enumerable.Repeat(3, 39), 258] };

        var act = () => CorpusPerplexity.Evaluate(model.Module, corpus, new CorpusWindowing { Window = 8 });

        act.Should().Throw<ArgumentException>().WithMessage("*token 39 is 258, outside the model's vocabulary [0, 258)*");
    }

    private sealed class SyncProgress(Action<PerplexityProgress> report) : IProgress<PerplexityProgress>
    {
        public void Report(PerplexityProgress value) => report(value);
    }

    [Fact]
    public void Evaluate_CorpusShorterThanOneWindow_ThrowsNamingTheFile()
    {
        using var model = PruningFixtures.Create(seed: 5, layers: 2);

        var act = () => CorpusPerplexity.Evaluate(model.Module, Corpus(10), new CorpusWindowing { Window = 16 });

        act.Should().Throw<ArgumentException>().WithMessage("Corpus 'test' ('/data/test.txt') gives 10 tokens, too few*");
    }

    [Fact]
    public void Tokenize_Text_EncodesTheWholeTextOnceWithBos()
    {
        var text = new PerplexityText("ptb", "ab\n\ncd", null, 2, "x");

        var corpus = CorpusPerplexity.Tokenize(text, PruningFixtures.Tokenizer);

        corpus.Tokens.Should().Equal(PruningFixtures.Tokenizer.Encode("ab\n\ncd"));
        corpus.Tokens.Should().HaveCount(7, "BOS and six bytes");
        corpus.Source.Should().BeSameAs(text);
    }

    [Fact]
    public void Validate_StrideLongerThanWindow_Throws()
    {
        var act = () => new CorpusWindowing { Window = 8, Stride = 9 }.Validate();

        act.Should().Throw<ArgumentOutOfRangeException>();
    }
}
