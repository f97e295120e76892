using Microsoft.Extensions.Options;

namespace Pip.Tests.Perturbation;

public class LexiconPerturberTests
{
    private static readonly Lexicon BigLexicon = Lexicon.FromTexts([Texts.Long,
        "alter ball bell bill bull call fall hall mall tall wall walk talk tale tile tame time lime line mine fine wine " +
        "vine dine mile male sale pale bale gale bank band hand land sand wand bark dark park mark lark river rover " +
        "miller killer filler tiller boats coats goats moats stone stoke store shore share spare water later hater " +
        "fields yields wheat heat cheat sheep sleep steep hills bills fills mills kills wills church churn long lone song"]);

    private static CalibrationSample Sample(string text, int index = 0) => new(index, text);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(12345)]
    public async Task PerturbAsync_LexiconHasAlter_TurnsLaterIntoAlter(int seed)
    {
        Lexicon lexicon = Lexicon.FromWords(["they", "met", "later", "that", "day", "alter"]);
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = lexicon });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("They met later that day."), seed);

        twin.Text.Should().Be("They met alter that day.");
        twin.Edits.Should().ContainSingle().Which.Should().Be(new PerturbationEdit(9, "later", "alter", PerturbationKind.Swap, true));
    }

    [Theory]
    [InlineData("happy", "nappy", PerturbationKind.Replace)]
    [InlineData("host", "ghost", PerturbationKind.Insert)]
    [InlineData("later", "alter", PerturbationKind.Swap)]
    [InlineData("bread", "bred", PerturbationKind.Delete)]
    [InlineData("Bread", "Bred", PerturbationKind.Delete)]
    public async Task PerturbAsync_SingleRealWordEdit_UsesIt(string word, string edited, PerturbationKind kind)
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = Lexicon.FromWords([edited]), Kinds = [kind] });

        PerturbedSample twin = await perturber.PerturbAsync(Sample($"a {word} b"), 3);

        twin.Text.Should().Be($"a {edited} b");
        twin.Edits.Should().ContainSingle().Which.Should().Be(new PerturbationEdit(2, word, edited, kind, true));
    }

    [Theory]
    [InlineData("Later on.", "Alter on.")]
    [InlineData("LATER ON.", "ALTER ON.")]
    [InlineData("later on.", "alter on.")]
    public async Task PerturbAsync_CapitalisedWord_KeepsCapitalisationPattern(string text, string expected)
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = Lexicon.FromWords(["alter"]) });

        PerturbedSample twin = await perturber.PerturbAsync(Sample(text), 1);

        twin.Text.Should().Be(expected);
    }

    [Fact]
    public async Task PerturbAsync_ManySeeds_RecordedEditsReproduceTextAndAreSingleCharacterEdits()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 0.2 });

        for (int seed = 0; seed < 50; seed++)
        {
            PerturbedSample twin = await perturber.PerturbAsync(Sample(Texts.Long), seed);

            EditAssertions.ShouldBeConsistent(twin);
            twin.Text.Should().NotBe(Texts.Long);
        }
    }

    [Fact]
    public async Task PerturbAsync_SameSampleAndSeed_GivesSameTwin()
    {
        IPerturber a = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon });
        IPerturber b = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon });

        PerturbedSample first = await a.PerturbAsync(Sample(Texts.Long), 42);
        PerturbedSample second = await b.PerturbAsync(Sample(Texts.Long), 42);

        second.Text.Should().Be(first.Text);
        second.Edits.Should().Equal(first.Edits);
    }

    [Fact]
    public async Task PerturbAsync_DifferentSeeds_GiveDifferentTwins()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon });

        var texts = new HashSet<string>();
        for (int seed = 0; seed < 10; seed++)
        {
            texts.Add((await perturber.PerturbAsync(Sample(Texts.Long), seed)).Text);
        }

        texts.Should().HaveCountGreaterThan(8);
    }

    [Fact]
    public async Task PerturbAsync_RealWordsAvailable_PrefersThem()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 0.1 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample(Texts.Long), 5);

        // 86 words × 0.1 → 9 edits; far more than 9 words of the text have a real-word neighbour in this lexicon.
        twin.Edits.Should().HaveCount(9);
        twin.Edits.Should().OnlyContain(e => e.IsRealWord && BigLexicon.Contains(e.After));
    }

    [Fact]
    public async Task PerturbAsync_NoRealWordEdit_FallsBackToPlainEdits()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = Lexicon.FromWords(["zzzzzz"]), Rate = 0.1 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample(Texts.Long), 5);

        twin.Edits.Should().HaveCount(9).And.OnlyContain(e => !e.IsRealWord);
        EditAssertions.ShouldBeConsistent(twin);
    }

    [Fact]
    public async Task PerturbAsync_PlainEditsDisallowed_MakesOnlyRealWordEdits()
    {
        Lexicon lexicon = Lexicon.FromWords(["alter"]);
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = lexicon, Rate = 0.5, AllowPlainEdits = false });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("They met later that day and talked."), 5);

        twin.Edits.Should().ContainSingle().Which.After.Should().Be("alter");
    }

    [Fact]
    public async Task PerturbAsync_Rate_GivesRoundedEditCountAndAtLeastOne()
    {
        IPerturber half = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 0.5 });
        IPerturber tiny = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 0.001 });

        (await half.PerturbAsync(Sample("river water miller stone later fields"), 1)).Edits.Should().HaveCount(3);
        (await tiny.PerturbAsync(Sample(Texts.Long), 1)).Edits.Should().HaveCount(1);
    }

    [Fact]
    public async Task PerturbAsync_HighRate_NeverTouchesAWordTwice()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 1.0 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("river water miller stone later fields"), 9);

        twin.Edits.Should().HaveCount(6);
        twin.Edits.Select(e => e.Offset).Should().OnlyHaveUniqueItems();
        EditAssertions.ShouldBeConsistent(twin);
    }

    [Fact]
    public async Task PerturbAsync_RepeatedWord_IsEditedOnlyOnce()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 1.0 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("River water, river water. RIVER WATER river water"), 4);

        twin.Edits.Should().HaveCount(2);
        twin.Edits.Select(e => e.Before.ToLowerInvariant()).Should().BeEquivalentTo(["river", "water"]);
        EditAssertions.ShouldBeConsistent(twin);
    }

    [Fact]
    public async Task PerturbAsync_ShortWords_AreSkipped()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 1.0, MinWordLength = 5 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("the cat sat on a mat near water"), 2);

        twin.Edits.Should().ContainSingle().Which.Before.Should().Be("water");
    }

    [Fact]
    public async Task PerturbAsync_OnlySwapsAllowed_MakesOnlySwaps()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 0.3, Kinds = [PerturbationKind.Swap] });

        PerturbedSample twin = await perturber.PerturbAsync(Sample(Texts.Long), 2);

        twin.Edits.Should().NotBeEmpty().And.OnlyContain(e => e.Kind == PerturbationKind.Swap);
        EditAssertions.ShouldBeConsistent(twin);
    }

    [Fact]
    public async Task PerturbAsync_NoEligibleWord_ReturnsUnchangedText()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("a b 12 ?"), 2);

        twin.Text.Should().Be("a b 12 ?");
        twin.Edits.Should().BeEmpty();
    }

    [Fact]
    public async Task PerturbAsync_NonAsciiWords_AreNotEdited()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon, Rate = 1.0 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample("café naïve later"), 2);

        twin.Edits.Should().ContainSingle().Which.Before.Should().Be("later");
    }

    [Fact]
    public async Task PerturbAsync_Concurrent_GivesSameTwinsAsSequential()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon });
        CalibrationSample[] samples = Texts.Samples(16);

        string[] sequential = new string[samples.Length];
        for (int i = 0; i < samples.Length; i++)
        {
            sequential[i] = (await perturber.PerturbAsync(samples[i], i)).Text;
        }

        string[] parallel = new string[samples.Length];
        await Parallel.ForAsync(0, samples.Length, async (i, ct) => parallel[i] = (await perturber.PerturbAsync(samples[i], i, ct)).Text);

        parallel.Should().Equal(sequential);
    }

    [Fact]
    public async Task PerturbAsync_Cancelled_Throws()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions { Lexicon = BigLexicon });

        Func<Task> act = async () => await perturber.PerturbAsync(Sample(Texts.Long), 2, new CancellationToken(canceled: true));

        await act.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public void CreateLexicon_InvalidOptions_ThrowsListingEveryProblem()
    {
        var options = new LexiconPerturberOptions { Rate = 0, MinWordLength = 1, Kinds = [], WordListPath = "/nonexistent/words.txt", Lexicon = BigLexicon };

        Action act = () => Perturbers.CreateLexicon(options);

        OptionsValidationException e = act.Should().Throw<OptionsValidationException>().Which;
        e.Failures.Should().HaveCount(5);
        e.Failures.Should().Contain(f => f.Contains("Rate")).And.Contain(f => f.Contains("MinWordLength")).And.Contain(f => f.Contains("Kinds"))
            .And.Contain(f => f.Contains("/nonexistent/words.txt")).And.Contain(f => f.Contains("at most one"));
    }

    [Fact]
    public void CreateLexicon_NoLexiconSource_Throws()
    {
        Action act = () => Perturbers.CreateLexicon(new LexiconPerturberOptions());

        act.Should().Throw<ArgumentException>().WithMessage("*lexicon*");
    }

    [Fact]
    public async Task CreateLexicon_Corpus_BuildsLexiconFromIt()
    {
        IPerturber perturber = Perturbers.CreateLexicon(new LexiconPerturberOptions(), ["they alter things"]);

        (await perturber.PerturbAsync(Sample("They met later that day."), 0)).Text.Should().Be("They met alter that day.");
    }
}
