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
        result.Should().Be(expected);
        result.Windows.Should().Be(4);
        result.TokenCount.Should().Be(4 * 15);
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
